CREATE TABLE `request_lines` (
	`request_id` text PRIMARY KEY NOT NULL,
	`handles` text NOT NULL,
	`failed_started_at` integer,
	FOREIGN KEY (`request_id`) REFERENCES `requests`(`id`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
ALTER TABLE `request_summaries` ADD `version` integer DEFAULT 1 NOT NULL;