import { ChannelError } from './channel-error.js';
import type { ChannelRules, Permission } from './hub-options.js';

/** The rules of each channel: by exact name, or by the longest prefix pattern ("chat:*") that matches. */
export class ChannelRulebook {
  private readonly rules: Array<[prefix: string, exact: boolean, rules: ChannelRules]>;

  constructor(channels: Record<string, ChannelRules> = {}) {
    this.rules = Object.entries(channels)
      .map(([pattern, rules]): [string, boolean, ChannelRules] =>
        pattern.endsWith('*') ? [pattern.slice(0, -1), false, rules] : [pattern, true, rules],
      )
      .sort((a, b) => b[0].length - a[0].length);
  }

  for(channel: string): ChannelRules | undefined {
    for (const [prefix, exact, rules] of this.rules) {
      if (exact ? channel === prefix : channel.startsWith(prefix)) return rules;
    }
    return undefined;
  }
}

/** Awaits a permission hook's answer (none: allowed); false throws `forbidden`. */
export async function authorize(permission: Permission | undefined, channel: string, action: string): Promise<void> {
  if (permission === undefined) return;
  if (!(await permission)) throw new ChannelError('forbidden', `not allowed to ${action} ${channel}`);
}
