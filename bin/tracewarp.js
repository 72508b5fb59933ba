#!/usr/bin/env node
// Tiny launcher: registers tsx so the TypeScript sources run as they are, then hands over to the CLI.
import { register } from 'tsx/esm/api';
register();
const { main } = await import('../src/cli/main.ts');
process.exitCode = await main(process.argv.slice(2));
// The command has finished (every file closed, every thread ended): exit as soon as stdout and stderr are flushed,
// rather than when the last timer some module left running fires (a stopped replay must end when it says it does).
const flushed = (stream) => new Promise((resolve) => (stream.writableLength === 0 ? resolve() : stream.write('', () => resolve())));
await Promise.all([flushed(process.stdout), flushed(process.stderr)]);
process.exit();
