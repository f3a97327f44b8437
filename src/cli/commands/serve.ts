import type { Command } from '../command';

export const serve: Command = {
  name: 'serve',
  summary: 'run the service in this process',
  help: `Usage: prefix-handles serve [--port N] [--host H] [--data-dir DIR]

Runs the service (the same as \`npm start\`) until SIGINT or SIGTERM.
The first start with no keys writes a default tenant's API key to <data dir>/api-key,
where the other commands find it.

Options:
  --port N          listen port (env PORT; default 8787; 0 picks a free one)
  --host H          listen address (env HOST; default 127.0.0.1)
  --data-dir DIR    database and api-key file (env PH_DATA_DIR; default ./data)

Every other setting comes from the environment: see the README's Configuration table.`,
  options: { port: { type: 'string' }, host: { type: 'string' }, 'data-dir': { type: 'string' } },
  positionals: [0, 0],
  async run({ values }) {
    // Flags become the environment main.ts reads, so there is one way to configure the service.
    if (values.port !== undefined) process.env.PORT = String(values.port);
    if (values.host !== undefined) process.env.HOST = String(values.host);
    if (values['data-dir'] !== undefined) process.env.PH_DATA_DIR = String(values['data-dir']);
    await import('../../main');
    return undefined;
  },
};
