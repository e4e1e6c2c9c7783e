import type { CloudInstance, CloudProvider, PowerChange } from './cloud-provider.ts';
import { ProviderError } from './cloud-provider.ts';

/**
 * Hosts registered by hand or from CSV: on-prem machines, anything with an address. Their rows are
 * the inventory, so there is nothing to list, and Stagedoor has no power control over them.
 */
export class StaticProvider implements CloudProvider {
  readonly kind = 'static' as const;
  readonly apiCalls = 0;

  constructor(private readonly name: string) {}

  async listInstances(): Promise<CloudInstance[]> {
    return [];
  }

  async testConnection() {
    return { message: `static provider "${this.name}": hosts are registered by API or CSV; nothing to connect to`, details: {} };
  }

  launch(): Promise<CloudInstance[]> {
    return this.#cannot('launch machines: register existing hosts instead');
  }
  start(): Promise<PowerChange[]> {
    return this.#cannot('start machines: power these hosts on by hand');
  }
  stop(): Promise<PowerChange[]> {
    return this.#cannot('stop machines: power these hosts off by hand');
  }
  reboot(): Promise<void> {
    return this.#cannot('reboot machines: restart these hosts by hand');
  }
  terminate(): Promise<PowerChange[]> {
    return this.#cannot('terminate machines: remove the host from the provider instead');
  }
  tag(): Promise<void> {
    return this.#cannot('tag machines in a cloud: edit the host\'s tags in Stagedoor');
  }

  #cannot(what: string): never {
    throw new ProviderError('unsupported', `the static provider "${this.name}" cannot ${what}`);
  }
}
