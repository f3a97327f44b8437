CREATE TABLE `scope_snapshot_changes` (
	`scope` text NOT NULL,
	`chain` text NOT NULL,
	`part` integer NOT NULL,
	`entries` text NOT NULL,
	PRIMARY KEY(`scope`, `chain`, `part`)
);
--> statement-breakpoint
CREATE TABLE `scope_snapshots` (
	`scope` text PRIMARY KEY NOT NULL,
	`seq` integer NOT NULL,
	`rows` integer NOT NULL,
	`version` integer NOT NULL,
	`rules` text NOT NULL,
	`chain` text NOT NULL,
	`parts` integer NOT NULL,
	`state` text NOT NULL
);
