import type { Command } from 'commander';
import { runEc2Emulator } from '@stagedoor/ec2-emulator';
import { CliError } from '../cli-error.ts';

/** `stagedoor ec2-emulator`: the EC2 Query API emulator on its own, for demos and other tools. */
export function ec2EmulatorCommand(program: Command): void {
  program
    .command('ec2-emulator')
    .description('run the EC2 Query API emulator (point the AWS SDK or CLI at it with --endpoint-url)')
    .option('--port <port>', 'TCP port', '4599')
    .option('--host <host>', 'address to bind', '127.0.0.1')
    .option('--state <file>', 'load state from this JSON file and save it there')
    .option('--region <region>', 'the region it emulates', 'us-east-1')
    .action(async (opts: { port: string; host: string; state?: string; region: string }) => {
      const port = Number(opts.port);
      if (!Number.isInteger(port) || port < 0 || port > 65535) throw new CliError(`--port must be a TCP port number (got "${opts.port}")`);
      const emu = await runEc2Emulator({ port, host: opts.host, statePath: opts.state, region: opts.region });
      const stop = async () => {
        await emu.close();
        process.exit(0);
      };
      process.once('SIGINT', () => void stop());
      process.once('SIGTERM', () => void stop());
    });
}
