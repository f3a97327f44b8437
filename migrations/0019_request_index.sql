CREATE TABLE `request_classes` (
	`tenant_id` text NOT NULL,
	`class` text NOT NULL,
	`within` text NOT NULL,
	`started_at` integer NOT NULL,
	`request_id` text NOT NULL,
	PRIMARY KEY(`tenant_id`, `class`, `within`, `started_at`, `request_id`)
);
--> statement-breakpoint
ALTER TABLE `request_starts` ADD `no_handle` integer DEFAULT false NOT NULL;--> statement-breakpoint
-- Rows written before this migration. The calls the reports count in `no_handle`: reconciled, no handle named (request_handles holds every id named or on a
-- path), and no handle on a segment's path (the summary says; one of another version or none, its outcome).
UPDATE `request_starts` SET `no_handle` = 1 WHERE `request_id` IN (
  SELECT c.`request_id` FROM `reconciliations` c
  LEFT JOIN `request_summaries` s ON s.`seq` = c.`seq` AND s.`version` = 1
  WHERE NOT EXISTS (SELECT 1 FROM `request_handles` h WHERE h.`request_id` = c.`request_id`)
    AND CASE WHEN s.`seq` IS NOT NULL THEN json_array_length(s.`summary`, '$.handles') = 0
      ELSE NOT EXISTS (SELECT 1 FROM json_each(c.`outcome`, '$.segments') g WHERE json_array_length(g.`value`, '$.path') > 0) END
);--> statement-breakpoint
-- Each reconciled request's rare classes (all but captured and cold) as reconciliation writes them (classMarks): from
-- its summary, or from its outcome as the list summarises it (every segment but inline ones, on '*' and on each handle
-- of its path once), on '*', on each handle, and on each handle's type.
WITH `listed` AS MATERIALIZED (
  SELECT r.`tenant_id` AS `tenant_id`, c.`request_id` AS `request_id`, c.`started_at` AS `started_at`, s.`summary` AS `summary`,
    CASE WHEN s.`seq` IS NULL THEN c.`outcome` END AS `outcome`
  FROM `reconciliations` c
  JOIN `requests` r ON r.`id` = c.`request_id`
  LEFT JOIN `request_summaries` s ON s.`seq` = c.`seq` AND s.`version` = 1
), `mark` AS (
  SELECT l.`tenant_id`, l.`request_id`, l.`started_at`, k.`key` AS `class`, '*' AS `within`
  FROM `listed` l JOIN json_each(l.`summary`, '$.classes') k WHERE l.`summary` IS NOT NULL AND k.`value` > 0
  UNION ALL
  SELECT l.`tenant_id`, l.`request_id`, l.`started_at`, k.`key`, h.`key`
  FROM `listed` l JOIN json_each(l.`summary`, '$.by_handle') h JOIN json_each(h.`value`) k WHERE l.`summary` IS NOT NULL AND k.`value` > 0
  UNION ALL
  SELECT l.`tenant_id`, l.`request_id`, l.`started_at`, k.`key`, '*'
  FROM `listed` l JOIN json_each(l.`outcome`, '$.segments') g JOIN json_each(g.`value`, '$.classes') k
  WHERE l.`outcome` IS NOT NULL AND json_extract(g.`value`, '$.source') != 'inline' AND k.`value` > 0
  UNION ALL
  SELECT l.`tenant_id`, l.`request_id`, l.`started_at`, k.`key`,
    CASE WHEN instr(p.`value`, '@') > 0 THEN substr(p.`value`, 1, instr(p.`value`, '@') - 1) ELSE p.`value` END
  FROM `listed` l JOIN json_each(l.`outcome`, '$.segments') g JOIN json_each(g.`value`, '$.classes') k JOIN json_each(g.`value`, '$.path') p
  WHERE l.`outcome` IS NOT NULL AND json_extract(g.`value`, '$.source') != 'inline' AND k.`value` > 0
), `rare` AS (
  SELECT * FROM `mark` WHERE `class` NOT IN ('captured', 'cold') AND (`within` = '*' OR substr(`within`, 1, 4) IN ('art_', 'bnd_', 'ses_'))
)
INSERT OR IGNORE INTO `request_classes` (`tenant_id`, `class`, `within`, `started_at`, `request_id`)
SELECT `tenant_id`, `class`, `within`, `started_at`, `request_id` FROM `rare`
UNION ALL
SELECT `tenant_id`, `class`, CASE substr(`within`, 1, 4) WHEN 'art_' THEN 'artifact' WHEN 'bnd_' THEN 'bundle' ELSE 'session' END, `started_at`, `request_id`
FROM `rare` WHERE `within` != '*';--> statement-breakpoint
CREATE INDEX `request_classes_request` ON `request_classes` (`request_id`);--> statement-breakpoint
CREATE INDEX `request_starts_no_handle` ON `request_starts` (`tenant_id`,`started_at`,`request_id`) WHERE "request_starts"."no_handle" = 1;
