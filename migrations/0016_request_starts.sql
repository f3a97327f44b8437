CREATE TABLE `request_starts` (
	`request_id` text PRIMARY KEY NOT NULL,
	`tenant_id` text NOT NULL,
	`started_at` integer NOT NULL,
	FOREIGN KEY (`request_id`) REFERENCES `requests`(`id`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE INDEX `request_starts_tenant` ON `request_starts` (`tenant_id`,`started_at`,`request_id`);--> statement-breakpoint
ALTER TABLE `request_handles` ADD `started_at` integer;--> statement-breakpoint
CREATE INDEX `request_handles_started` ON `request_handles` (`tenant_id`,`handle_id`,`started_at`,`request_id`);--> statement-breakpoint
-- Requests stored before: the start their report or failure gave, else the render time (a request recorded before
-- 0014 that failed keeps its render time: its start sits past its segments). Every column read precedes them.
INSERT INTO `request_starts` (`request_id`, `tenant_id`, `started_at`)
  SELECT r.`id`, r.`tenant_id`, coalesce(c.`started_at`, l.`failed_started_at`, r.`rendered_at`) FROM `requests` r
  LEFT JOIN `reconciliations` c ON c.`request_id` = r.`id` LEFT JOIN `request_lines` l ON l.`request_id` = r.`id`;--> statement-breakpoint
UPDATE `request_handles` SET `started_at` = (SELECT s.`started_at` FROM `request_starts` s WHERE s.`request_id` = `request_handles`.`request_id`);
