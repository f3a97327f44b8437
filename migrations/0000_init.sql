CREATE TABLE `api_keys` (
	`id` text PRIMARY KEY NOT NULL,
	`tenant_id` text NOT NULL,
	`key_hash` text NOT NULL,
	`hint` text NOT NULL,
	`created_at` integer NOT NULL,
	`revoked_at` integer,
	FOREIGN KEY (`tenant_id`) REFERENCES `tenants`(`id`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE UNIQUE INDEX `api_keys_hash` ON `api_keys` (`key_hash`);--> statement-breakpoint
CREATE INDEX `api_keys_tenant` ON `api_keys` (`tenant_id`);--> statement-breakpoint
CREATE TABLE `blobs` (
	`digest` text PRIMARY KEY NOT NULL,
	`bytes` blob NOT NULL,
	`size` integer NOT NULL
);
--> statement-breakpoint
CREATE TABLE `calibration` (
	`tenant_id` text NOT NULL,
	`model` text NOT NULL,
	`family` text NOT NULL,
	`provider_tokens` integer NOT NULL,
	`estimated_tokens` integer NOT NULL,
	`reports` integer NOT NULL,
	PRIMARY KEY(`tenant_id`, `model`)
);
--> statement-breakpoint
CREATE TABLE `drift_findings` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`tenant_id` text NOT NULL,
	`handle_id` text NOT NULL,
	`request_id` text NOT NULL,
	`previous_request_id` text NOT NULL,
	`at` integer NOT NULL,
	`finding` text NOT NULL
);
--> statement-breakpoint
CREATE INDEX `drift_findings_handle` ON `drift_findings` (`tenant_id`,`handle_id`,`at`);--> statement-breakpoint
CREATE TABLE `handle_pins` (
	`from_id` text NOT NULL,
	`from_version` integer NOT NULL,
	`to_id` text NOT NULL,
	`to_version` integer NOT NULL,
	PRIMARY KEY(`from_id`, `from_version`, `to_id`, `to_version`)
);
--> statement-breakpoint
CREATE INDEX `handle_pins_to` ON `handle_pins` (`to_id`);--> statement-breakpoint
CREATE TABLE `handle_versions` (
	`handle_id` text NOT NULL,
	`version` integer NOT NULL,
	`created_at` integer NOT NULL,
	`digest` text NOT NULL,
	`size` integer NOT NULL,
	`content_digest` text,
	`members` text,
	`base` text,
	`message_count` integer,
	`meta` text,
	PRIMARY KEY(`handle_id`, `version`),
	FOREIGN KEY (`handle_id`) REFERENCES `handles`(`id`) ON UPDATE no action ON DELETE no action,
	FOREIGN KEY (`content_digest`) REFERENCES `blobs`(`digest`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE TABLE `handles` (
	`id` text PRIMARY KEY NOT NULL,
	`tenant_id` text NOT NULL,
	`type` text NOT NULL,
	`kind` text,
	`name` text,
	`metadata` text,
	`latest_version` integer NOT NULL,
	`created_at` integer NOT NULL,
	`deleted_at` integer,
	FOREIGN KEY (`tenant_id`) REFERENCES `tenants`(`id`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE INDEX `handles_tenant_list` ON `handles` (`tenant_id`,`id`);--> statement-breakpoint
CREATE TABLE `request_inline` (
	`request_id` text NOT NULL,
	`segment` integer NOT NULL,
	`text` text NOT NULL,
	`truncated` integer NOT NULL,
	`expires_at` integer NOT NULL,
	PRIMARY KEY(`request_id`, `segment`),
	FOREIGN KEY (`request_id`) REFERENCES `requests`(`id`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE INDEX `request_inline_expiry` ON `request_inline` (`expires_at`);--> statement-breakpoint
CREATE TABLE `requests` (
	`id` text PRIMARY KEY NOT NULL,
	`tenant_id` text NOT NULL,
	`scope` text NOT NULL,
	`format` text NOT NULL,
	`model` text NOT NULL,
	`catalog_entry` text NOT NULL,
	`catalog_fallback` integer NOT NULL,
	`rendered_at` integer NOT NULL,
	`segments` text NOT NULL,
	`breakpoints` text NOT NULL,
	`prompt_cache_key` text,
	`prediction` text,
	`status` text DEFAULT 'rendered' NOT NULL,
	`reconciled_seq` integer,
	`started_at` integer,
	`first_byte_at` integer,
	`finished_at` integer,
	`report_hash` text,
	`usage_raw` text,
	`usage` text,
	`diagnostics` text,
	`outcome` text,
	`write_premium` text,
	`write_read` integer,
	FOREIGN KEY (`tenant_id`) REFERENCES `tenants`(`id`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE INDEX `requests_scope` ON `requests` (`scope`,`rendered_at`);--> statement-breakpoint
CREATE INDEX `requests_tenant` ON `requests` (`tenant_id`,`rendered_at`);--> statement-breakpoint
CREATE TABLE `rollups` (
	`tenant_id` text NOT NULL,
	`handle_id` text NOT NULL,
	`version` integer NOT NULL,
	`day` integer NOT NULL,
	`model` text NOT NULL,
	`requests` integer DEFAULT 0 NOT NULL,
	`referenced` integer DEFAULT 0 NOT NULL,
	`req_referenced` integer DEFAULT 0 NOT NULL,
	`opportunity` integer DEFAULT 0 NOT NULL,
	`req_opportunity` integer DEFAULT 0 NOT NULL,
	`reported_opportunity` integer DEFAULT 0 NOT NULL,
	`req_reported_opportunity` integer DEFAULT 0 NOT NULL,
	`predicted` integer DEFAULT 0 NOT NULL,
	`req_predicted` integer DEFAULT 0 NOT NULL,
	`captured` integer DEFAULT 0 NOT NULL,
	`req_captured` integer DEFAULT 0 NOT NULL,
	`bonus` integer DEFAULT 0 NOT NULL,
	`req_bonus` integer DEFAULT 0 NOT NULL,
	`unconfirmed` integer DEFAULT 0 NOT NULL,
	`req_unconfirmed` integer DEFAULT 0 NOT NULL,
	`unknown` integer DEFAULT 0 NOT NULL,
	`req_unknown` integer DEFAULT 0 NOT NULL,
	`cold` integer DEFAULT 0 NOT NULL,
	`req_cold` integer DEFAULT 0 NOT NULL,
	`drift` integer DEFAULT 0 NOT NULL,
	`req_drift` integer DEFAULT 0 NOT NULL,
	`expired` integer DEFAULT 0 NOT NULL,
	`req_expired` integer DEFAULT 0 NOT NULL,
	`concurrent` integer DEFAULT 0 NOT NULL,
	`req_concurrent` integer DEFAULT 0 NOT NULL,
	`below_minimum` integer DEFAULT 0 NOT NULL,
	`req_below_minimum` integer DEFAULT 0 NOT NULL,
	`no_breakpoint` integer DEFAULT 0 NOT NULL,
	`req_no_breakpoint` integer DEFAULT 0 NOT NULL,
	`lookback` integer DEFAULT 0 NOT NULL,
	`req_lookback` integer DEFAULT 0 NOT NULL,
	`cost_actual` real DEFAULT 0 NOT NULL,
	`cost_no_cache` real DEFAULT 0 NOT NULL,
	`cost_perfect` real DEFAULT 0 NOT NULL,
	`cost_unknown` real DEFAULT 0 NOT NULL,
	`write_premium_paid` real DEFAULT 0 NOT NULL,
	`write_premium_read` real DEFAULT 0 NOT NULL,
	PRIMARY KEY(`tenant_id`, `handle_id`, `version`, `day`, `model`)
);
--> statement-breakpoint
CREATE TABLE `tenants` (
	`id` text PRIMARY KEY NOT NULL,
	`name` text NOT NULL,
	`created_at` integer NOT NULL
);
