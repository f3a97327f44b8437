import { resolve } from 'node:path';
import { CliError, type Command } from '../command';

export const backup: Command = {
  name: 'backup',
  summary: 'copy the database, safely while the service runs',
  help: `Usage: prefix-handles backup <file> [--data-dir DIR]

Writes a consistent copy of the service's database to <file> (which must not exist),
while the service keeps running and writing: one SQLite snapshot (VACUUM INTO), then
checked (quick_check). Copying prefix-handles.db yourself is not safe while the service
runs: the commits not yet checkpointed are in prefix-handles.db-wal.

Restore: stop the service, remove prefix-handles.db-wal and prefix-handles.db-shm,
put the copy in place as prefix-handles.db, start the service.

Options:
  --data-dir DIR    the service's data directory (env PH_DATA_DIR; default ./data);
                    PH_DATABASE names the file itself, as for the service`,
  options: { 'data-dir': { type: 'string' } },
  positionals: [1, 1],
  async run({ values, positionals }) {
    // Imported here: the configuration's and the database's code is most of a start-up no other command needs.
    const [{ loadConfig }, { BackupError, backupDatabase }] = await Promise.all([import('../../config'), import('../../store/db')]);
    // The file the service would open with the same settings.
    const { databasePath } = loadConfig({ PH_DATA_DIR: (values['data-dir'] as string | undefined) ?? process.env.PH_DATA_DIR, PH_DATABASE: process.env.PH_DATABASE });
    if (databasePath === ':memory:') throw new CliError('backup: PH_DATABASE is :memory:, which has no file to copy');
    const dest = resolve(positionals[0]!);
    try {
      const { bytes } = backupDatabase(databasePath, dest);
      process.stdout.write(`backup: ${databasePath} → ${dest} (${bytes} bytes, checked)\n`);
      return 0;
    } catch (err) {
      if (err instanceof BackupError) throw new CliError(`backup: ${err.message}`);
      throw new CliError(`backup: ${databasePath} → ${dest}: ${(err as Error).message}`);
    }
  },
};
