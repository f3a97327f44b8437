import type { Command } from '../command';
import { backup } from './backup';
import { bundle } from './bundle';
import { expand } from './expand';
import { handles, remove, show } from './handles';
import { importCalls } from './import';
import { keys } from './keys';
import { mint } from './mint';
import { prune } from './prune';
import { report } from './report';
import { request, requests } from './request';
import { serve } from './serve';
import { session } from './session';
import { suggest } from './suggest';
import { tenants } from './tenants';
import { verify } from './verify';

/** Every command, in the order `prefix-handles --help` lists them (the README's table lists the same: a test checks). */
export const COMMANDS: Command[] = [serve, mint, bundle, session, expand, handles, show, remove, report, request, requests, importCalls, suggest, verify, backup, tenants, keys, prune];
