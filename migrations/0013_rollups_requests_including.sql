ALTER TABLE `rollups` ADD `requests_including` integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE `rollups_span` ADD `requests_including` integer DEFAULT 0 NOT NULL;--> statement-breakpoint
-- Rows stored before counted a request only on the row of the newest version of a handle it used (`requests`): the
-- same for an artifact or bundle a request used at one version.
UPDATE `rollups` SET `requests_including` = `requests`;
--> statement-breakpoint
-- A session's version k holds batch k, which every request at version k or later (that day, on that model) sent: the
-- requests of those versions. A version 1 that appended no batch holds the base's tokens of its own requests only.
UPDATE `rollups` SET `requests_including` = w.`n`
  FROM (
    SELECT `rowid` AS `id`, sum(`requests`) OVER (PARTITION BY `tenant_id`, `handle_id`, `day`, `model` ORDER BY `version` DESC) AS `n`
    FROM `rollups` WHERE `handle_id` IN (SELECT `id` FROM `handles` WHERE `type` = 'session')
  ) w
  WHERE `rollups`.`rowid` = w.`id`
    AND NOT (`rollups`.`version` = 1 AND EXISTS (SELECT 1 FROM `handle_versions` v WHERE v.`handle_id` = `rollups`.`handle_id` AND v.`version` = 1 AND v.`message_count` = 0));
--> statement-breakpoint
-- Spans are sums of days, made again by the first report that needs one.
DELETE FROM `rollups_span`;
--> statement-breakpoint
DELETE FROM `rollups_span_through`;
