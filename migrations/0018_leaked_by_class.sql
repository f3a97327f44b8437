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
-- Rows written before this migration: their leaked money (cost_actual - cost_perfect) divided among the classes that
-- missed by their tokens. Reconciliation divides each segment's (its unread tokens all cost the same); a row's tokens,
-- of one model on one day, differ only by the write TTLs and price tiers of its calls, so this is that division in
-- all but those. Calls without cache fields are on these rows too, with no money: theirs is counted apart.
UPDATE `rollups` SET
  `leaked_drift` = (`cost_actual` - `cost_perfect`) * `drift` / (`drift` + `expired` + `concurrent` + `below_minimum` + `no_breakpoint` + `lookback` + `unconfirmed`),
  `leaked_expired` = (`cost_actual` - `cost_perfect`) * `expired` / (`drift` + `expired` + `concurrent` + `below_minimum` + `no_breakpoint` + `lookback` + `unconfirmed`),
  `leaked_concurrent` = (`cost_actual` - `cost_perfect`) * `concurrent` / (`drift` + `expired` + `concurrent` + `below_minimum` + `no_breakpoint` + `lookback` + `unconfirmed`),
  `leaked_below_minimum` = (`cost_actual` - `cost_perfect`) * `below_minimum` / (`drift` + `expired` + `concurrent` + `below_minimum` + `no_breakpoint` + `lookback` + `unconfirmed`),
  `leaked_no_breakpoint` = (`cost_actual` - `cost_perfect`) * `no_breakpoint` / (`drift` + `expired` + `concurrent` + `below_minimum` + `no_breakpoint` + `lookback` + `unconfirmed`),
  `leaked_lookback` = (`cost_actual` - `cost_perfect`) * `lookback` / (`drift` + `expired` + `concurrent` + `below_minimum` + `no_breakpoint` + `lookback` + `unconfirmed`),
  `leaked_unconfirmed` = (`cost_actual` - `cost_perfect`) * `unconfirmed` / (`drift` + `expired` + `concurrent` + `below_minimum` + `no_breakpoint` + `lookback` + `unconfirmed`)
WHERE `cost_actual` > `cost_perfect` AND (`drift` + `expired` + `concurrent` + `below_minimum` + `no_breakpoint` + `lookback` + `unconfirmed`) > 0;--> statement-breakpoint
-- Spans are sums of day rows made by the report that first needs one: made again with the new columns.
DELETE FROM `rollups_span`;--> statement-breakpoint
DELETE FROM `rollups_span_through`;
