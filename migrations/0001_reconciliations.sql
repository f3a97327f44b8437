CREATE TABLE `reconciliations` (
	`seq` integer PRIMARY KEY NOT NULL,
	`request_id` text NOT NULL,
	`started_at` integer NOT NULL,
	`first_byte_at` integer NOT NULL,
	`finished_at` integer NOT NULL,
	`report_hash` text NOT NULL,
	`usage_raw` text NOT NULL,
	`usage` text NOT NULL,
	`diagnostics` text,
	`outcome` text NOT NULL,
	`write_premium` text NOT NULL,
	`write_read` integer DEFAULT false NOT NULL,
	FOREIGN KEY (`request_id`) REFERENCES `requests`(`id`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE UNIQUE INDEX `reconciliations_request` ON `reconciliations` (`request_id`);--> statement-breakpoint
-- Reconciled requests move their results to the new table, keeping their replay order.
UPDATE `requests` SET `reconciled_seq` = (SELECT coalesce(max(`reconciled_seq`), 0) FROM `requests`) + rowid WHERE `status` = 'reconciled' AND `reconciled_seq` IS NULL;--> statement-breakpoint
INSERT INTO `reconciliations` (`seq`, `request_id`, `started_at`, `first_byte_at`, `finished_at`, `report_hash`, `usage_raw`, `usage`, `diagnostics`, `outcome`, `write_premium`, `write_read`)
  SELECT `reconciled_seq`, `id`, coalesce(`started_at`, `rendered_at`), coalesce(`first_byte_at`, `finished_at`, `rendered_at`), coalesce(`finished_at`, `rendered_at`), `report_hash`, `usage_raw`, `usage`, `diagnostics`, `outcome`, coalesce(`write_premium`, '{}'), coalesce(`write_read`, 0)
  FROM `requests` WHERE `status` = 'reconciled';--> statement-breakpoint
UPDATE `requests` SET `started_at` = NULL, `finished_at` = NULL, `usage_raw` = NULL WHERE `status` = 'reconciled';--> statement-breakpoint
ALTER TABLE `requests` DROP COLUMN `first_byte_at`;--> statement-breakpoint
ALTER TABLE `requests` DROP COLUMN `report_hash`;--> statement-breakpoint
ALTER TABLE `requests` DROP COLUMN `usage`;--> statement-breakpoint
ALTER TABLE `requests` DROP COLUMN `diagnostics`;--> statement-breakpoint
ALTER TABLE `requests` DROP COLUMN `outcome`;--> statement-breakpoint
ALTER TABLE `requests` DROP COLUMN `write_premium`;--> statement-breakpoint
ALTER TABLE `requests` DROP COLUMN `write_read`;