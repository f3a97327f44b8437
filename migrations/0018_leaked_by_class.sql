ALTER TABLE `rollups` ADD `leaked_drift` real DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE `rollups` ADD `leaked_expired` real DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE `rollups` ADD `leaked_concurrent` real DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE `rollups` ADD `leaked_below_minimum` real DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE `rollups` ADD `leaked_no_breakpoint` real DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE `rollups` ADD `leaked_lookback` real DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE `rollups` ADD `leaked_unconfirmed` real DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE `rollups_span` ADD `leaked_drift` real DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE `rollups_span` ADD `leaked_expired` real DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE `rollups_span` ADD `leaked_concurrent` real DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE `rollups_span` ADD `leaked_below_minimum` real DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE `rollups_span` ADD `leaked_no_breakpoint` real DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE `rollups_span` ADD `leaked_lookback` real DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE `rollups_span` ADD `leaked_unconfirmed` real DEFAULT 0 NOT NULL;--> statement-breakpoint
-- Rows written before this migration: first their leaked money (cost_actual - cost_perfect) divided among the classes
-- that missed by their tokens. Reconciliation divides each segment's (its unread tokens all cost the same); a row's
-- tokens, of one model on one day, differ by the write TTLs and price tiers of its calls, and the misses of calls
-- without cache fields leaked none of it (their cost is counted apart): the rows with calls still stored are then
-- divided from those calls, below.
UPDATE `rollups` SET
  `leaked_drift` = (`cost_actual` - `cost_perfect`) * `drift` / (`drift` + `expired` + `concurrent` + `below_minimum` + `no_breakpoint` + `lookback` + `unconfirmed`),
  `leaked_expired` = (`cost_actual` - `cost_perfect`) * `expired` / (`drift` + `expired` + `concurrent` + `below_minimum` + `no_breakpoint` + `lookback` + `unconfirmed`),
  `leaked_concurrent` = (`cost_actual` - `cost_perfect`) * `concurrent` / (`drift` + `expired` + `concurrent` + `below_minimum` + `no_breakpoint` + `lookback` + `unconfirmed`),
  `leaked_below_minimum` = (`cost_actual` - `cost_perfect`) * `below_minimum` / (`drift` + `expired` + `concurrent` + `below_minimum` + `no_breakpoint` + `lookback` + `unconfirmed`),
  `leaked_no_breakpoint` = (`cost_actual` - `cost_perfect`) * `no_breakpoint` / (`drift` + `expired` + `concurrent` + `below_minimum` + `no_breakpoint` + `lookback` + `unconfirmed`),
  `leaked_lookback` = (`cost_actual` - `cost_perfect`) * `lookback` / (`drift` + `expired` + `concurrent` + `below_minimum` + `no_breakpoint` + `lookback` + `unconfirmed`),
  `leaked_unconfirmed` = (`cost_actual` - `cost_perfect`) * `unconfirmed` / (`drift` + `expired` + `concurrent` + `below_minimum` + `no_breakpoint` + `lookback` + `unconfirmed`)
WHERE `cost_actual` > `cost_perfect` AND (`drift` + `expired` + `concurrent` + `below_minimum` + `no_breakpoint` + `lookback` + `unconfirmed`) > 0;--> statement-breakpoint
-- The rows with calls still stored: each such call's segments divided as reconciliation divides them (a call without
-- cache fields leaks nothing), on the rows reconciliation counted them on (a handle segment on each handle of its
-- path, once, a session first on a longer path at its base, version 1, and on the tenant's '*'; a call that named no
-- handle, its content all inline, on '-'). What the row leaked past them (calls pruned since) is divided by the
-- tokens those calls missed: the misses of the stored calls without cache fields are not among them.
WITH `call` AS MATERIALIZED (
  -- Each stored call once: a reconciliation is its request's only one (by request_id, as the store finds it: the
  -- request's own status would be read past its segments).
  SELECT c.`seq` AS `seq`, r.`id` AS `id`, r.`tenant_id` AS `tenant_id`, r.`model` AS `model`, c.`started_at` / 86400000 AS `day`,
    coalesce(json_extract(c.`outcome`, '$.capture') = 'reported', 0) AS `reported`,
    EXISTS (SELECT 1 FROM `request_handles` h WHERE h.`request_id` = r.`id`) AS `listed`
  FROM `reconciliations` c
  JOIN `requests` r ON r.`id` = c.`request_id`
  WHERE json_type(c.`outcome`, '$.segments') = 'array'
), `segment` AS MATERIALIZED (
  -- Each segment's text once (json_each's value is made again each time it is read).
  SELECT k.`tenant_id` AS `tenant_id`, k.`model` AS `model`, k.`day` AS `day`, k.`listed` AS `listed`, k.`reported` AS `reported`, s.`value` AS `v`
  FROM `call` k
  JOIN `reconciliations` c ON c.`seq` = k.`seq`
  JOIN json_each(c.`outcome`, '$.segments') s
), `seg` AS MATERIALIZED (
  -- The rows each segment is on, as a list: its path's handles and '*', or '-' (a call that named none).
  SELECT `tenant_id` AS `tenant_id`, `model` AS `model`, `day` AS `day`,
    CASE WHEN NOT `listed` THEN '["-"]' WHEN json_extract(`v`, '$.source') != 'inline' THEN json_insert(json_extract(`v`, '$.path'), '$[#]', '*') ELSE '[]' END AS `keys`,
    coalesce(json_extract(`v`, '$.classes.drift'), 0) AS `drift`,
    coalesce(json_extract(`v`, '$.classes.expired'), 0) AS `expired`,
    coalesce(json_extract(`v`, '$.classes.concurrent'), 0) AS `concurrent`,
    coalesce(json_extract(`v`, '$.classes.below_minimum'), 0) AS `below_minimum`,
    coalesce(json_extract(`v`, '$.classes.no_breakpoint'), 0) AS `no_breakpoint`,
    coalesce(json_extract(`v`, '$.classes.lookback'), 0) AS `lookback`,
    coalesce(json_extract(`v`, '$.classes.unconfirmed'), 0) AS `unconfirmed`,
    CASE WHEN `reported` AND json_extract(`v`, '$.cost.actual') > json_extract(`v`, '$.cost.perfect')
      THEN json_extract(`v`, '$.cost.actual') - json_extract(`v`, '$.cost.perfect') ELSE 0 END AS `leaked`
  FROM `segment`
), `ref` AS (
  SELECT `seg`.*, p.`key` AS `at`, p.`value` AS `ref`,
    CASE WHEN instr(p.`value`, '@') > 0 THEN substr(p.`value`, 1, instr(p.`value`, '@') - 1) ELSE p.`value` END AS `id`
  FROM `seg` JOIN json_each(`seg`.`keys`) p
), `part` AS (
  SELECT `tenant_id`, `model`, `day`, `id` AS `handle_id`,
    -- A session first on a longer path: its base (its '*' is on the list too).
    CASE WHEN `at` = 0 AND json_array_length(`keys`) > 2 AND substr(`id`, 1, 4) = 'ses_' THEN 1
      WHEN instr(`ref`, '@') > 0 THEN CAST(substr(`ref`, instr(`ref`, '@') + 1) AS INTEGER) ELSE 0 END AS `version`,
    `drift`, `expired`, `concurrent`, `below_minimum`, `no_breakpoint`, `lookback`, `unconfirmed`, `leaked`
  FROM `ref` f
  WHERE `id` IN ('*', '-') OR substr(`id`, 1, 4) IN ('art_', 'bnd_', 'ses_') AND length(`id`) = 25
    -- Once a handle a path names twice (the first: as reconciliation's; a path names each once but for a cycle).
    AND (length(`keys`) - length(replace(`keys`, `id`, '')) = length(`id`)
      OR NOT EXISTS (SELECT 1 FROM json_each(f.`keys`) q WHERE q.`key` < f.`at` AND (q.`value` = f.`id` OR substr(q.`value`, 1, 26) = f.`id` || '@')))
), `stored` AS (
  SELECT `tenant_id`, `handle_id`, `version`, `day`, `model`,
    sum(`drift`) AS `drift`, sum(`expired`) AS `expired`, sum(`concurrent`) AS `concurrent`, sum(`below_minimum`) AS `below_minimum`,
    sum(`no_breakpoint`) AS `no_breakpoint`, sum(`lookback`) AS `lookback`, sum(`unconfirmed`) AS `unconfirmed`,
    sum(`l` * `drift` / max(`missed`, 1)) AS `l_drift`, sum(`l` * `expired` / max(`missed`, 1)) AS `l_expired`, sum(`l` * `concurrent` / max(`missed`, 1)) AS `l_concurrent`,
    sum(`l` * `below_minimum` / max(`missed`, 1)) AS `l_below_minimum`, sum(`l` * `no_breakpoint` / max(`missed`, 1)) AS `l_no_breakpoint`,
    sum(`l` * `lookback` / max(`missed`, 1)) AS `l_lookback`, sum(`l` * `unconfirmed` / max(`missed`, 1)) AS `l_unconfirmed`, sum(`l`) AS `leaked`
  FROM (SELECT *, `drift` + `expired` + `concurrent` + `below_minimum` + `no_breakpoint` + `lookback` + `unconfirmed` AS `missed`,
      CASE WHEN `drift` + `expired` + `concurrent` + `below_minimum` + `no_breakpoint` + `lookback` + `unconfirmed` > 0 THEN `leaked` ELSE 0 END AS `l` FROM `part`)
  GROUP BY `tenant_id`, `handle_id`, `version`, `day`, `model`
), `rest` AS (
  SELECT s.*, (r.`cost_actual` - r.`cost_perfect`) - s.`leaked` AS `money`,
    max(r.`drift` - s.`drift`, 0) AS `r_drift`, max(r.`expired` - s.`expired`, 0) AS `r_expired`, max(r.`concurrent` - s.`concurrent`, 0) AS `r_concurrent`,
    max(r.`below_minimum` - s.`below_minimum`, 0) AS `r_below_minimum`, max(r.`no_breakpoint` - s.`no_breakpoint`, 0) AS `r_no_breakpoint`,
    max(r.`lookback` - s.`lookback`, 0) AS `r_lookback`, max(r.`unconfirmed` - s.`unconfirmed`, 0) AS `r_unconfirmed`
  FROM `stored` s JOIN `rollups` r USING (`tenant_id`, `handle_id`, `version`, `day`, `model`)
), `divided` AS (
  SELECT *, CASE WHEN `money` > 0 AND `r_missed` > 0 THEN `money` / `r_missed` ELSE 0 END AS `per`
  FROM (SELECT *, `r_drift` + `r_expired` + `r_concurrent` + `r_below_minimum` + `r_no_breakpoint` + `r_lookback` + `r_unconfirmed` AS `r_missed` FROM `rest`)
)
UPDATE `rollups` SET
  `leaked_drift` = d.`l_drift` + d.`per` * d.`r_drift`,
  `leaked_expired` = d.`l_expired` + d.`per` * d.`r_expired`,
  `leaked_concurrent` = d.`l_concurrent` + d.`per` * d.`r_concurrent`,
  `leaked_below_minimum` = d.`l_below_minimum` + d.`per` * d.`r_below_minimum`,
  `leaked_no_breakpoint` = d.`l_no_breakpoint` + d.`per` * d.`r_no_breakpoint`,
  `leaked_lookback` = d.`l_lookback` + d.`per` * d.`r_lookback`,
  `leaked_unconfirmed` = d.`l_unconfirmed` + d.`per` * d.`r_unconfirmed`
FROM `divided` d
WHERE `rollups`.`tenant_id` = d.`tenant_id` AND `rollups`.`handle_id` = d.`handle_id` AND `rollups`.`version` = d.`version` AND `rollups`.`day` = d.`day` AND `rollups`.`model` = d.`model`;--> statement-breakpoint
-- Spans are sums of day rows made by the report that first needs one: made again with the new columns.
DELETE FROM `rollups_span`;--> statement-breakpoint
DELETE FROM `rollups_span_through`;
