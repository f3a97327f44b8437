CREATE TABLE `request_retention` (
	`id` integer PRIMARY KEY NOT NULL,
	`pruned_before` integer NOT NULL
);
--> statement-breakpoint
CREATE TABLE `scope_pruned` (
	`scope` text PRIMARY KEY NOT NULL,
	`rows` integer NOT NULL
);
--> statement-breakpoint
ALTER TABLE `drift_findings` ADD `model` text;--> statement-breakpoint
CREATE INDEX `request_handles_request` ON `request_handles` (`request_id`);--> statement-breakpoint
-- Findings stored before: the model of their request (a request's model sits before its segments: one page each).
UPDATE `drift_findings` SET `model` = (SELECT `model` FROM `requests` WHERE `requests`.`id` = `drift_findings`.`request_id`);
