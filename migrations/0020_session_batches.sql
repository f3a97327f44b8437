CREATE TABLE `session_batches` (
	`tenant_id` text NOT NULL,
	`session_id` text NOT NULL,
	`variant` text NOT NULL,
	`version` integer NOT NULL,
	`entry` text NOT NULL,
	PRIMARY KEY(`tenant_id`, `session_id`, `variant`, `version`),
	FOREIGN KEY (`tenant_id`) REFERENCES `tenants`(`id`) ON UPDATE no action ON DELETE no action
);
