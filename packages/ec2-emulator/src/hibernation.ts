// EC2's hibernation prerequisites, checked at RunInstances when HibernationOptions.Configured=true
// (AWS User Guide, "Prerequisites for EC2 instance hibernation"): a supported instance family, not
// bare metal, RAM under 150 GiB (Linux) or at most 16 GiB (Windows), and an encrypted EBS root volume
// large enough to hold the RAM next to what the image already uses. Hibernation cannot be enabled
// after launch, and StopInstances with Hibernate=true on an instance launched without it fails.

import { Ec2Error } from './errors.ts';
import type { ImageRecord } from './types.ts';

/** The image's root snapshot size: as seeded, else EC2's usual 30 GiB (Windows) or 8 GiB (Linux). */
export function rootSnapshotGiB(image: ImageRecord): number {
  return image.rootVolumeSizeGiB ?? (image.platform === 'windows' ? 30 : 8);
}

/** Instance families that support hibernation (the User Guide's list; bare metal sizes excluded). */
const FAMILIES = new Set(
  [
    // General purpose
    'm3 m4 m5 m5a m5ad m5d m6a m6g m6gd m6i m6id m6idn m6in m7a m7g m7gd m7i m7i-flex m8a m8g m8gd m8i t2 t3 t3a t4g',
    // Compute optimized
    'c3 c4 c5 c5d c6a c6g c6gd c6gn c6i c6id c6in c7a c7g c7gd c7gn c7i c7i-flex c8g',
    // Memory optimized
    'r3 r4 r5 r5a r5ad r5d r6a r6g r6gd r6idn r6in r7a r7g r7gd r7i r7iz r8g x2gd',
    // Storage optimized
    'i3 i3en i4g im4gn is4gen',
  ].join(' ').split(' '),
);

/** GiB of memory per "large" unit (2 vCPUs) by family class; a model, close to the real sizes. */
const GIB_PER_LARGE: Record<string, number> = { c: 4, m: 8, t: 8, g: 8, p: 30, r: 16, i: 15, x: 32, z: 16 };
const SIZE_UNITS: Record<string, number> = { nano: 0.0625, micro: 0.125, small: 0.25, medium: 0.5, large: 1, xlarge: 2 };

/** The instance type's memory in GiB, modelled from its family class and size (e.g. m5.xlarge → 16). */
export function memoryGiB(instanceType: string): number {
  const [family = '', size = ''] = instanceType.split('.');
  const perLarge = GIB_PER_LARGE[family.charAt(0)] ?? 8;
  const multiple = /^(\d+)xlarge$/.exec(size);
  const units = multiple ? 2 * Number(multiple[1]) : (SIZE_UNITS[size] ?? 2);
  return perLarge * units;
}

export function hibernationSupported(instanceType: string): boolean {
  const [family = '', size = ''] = instanceType.split('.');
  return FAMILIES.has(family) && !size.startsWith('metal');
}

export interface RootVolume {
  sizeGiB: number;
  encrypted: boolean;
}

const unsupported = (message: string) => new Ec2Error('UnsupportedHibernationConfiguration', message);

/** Throws EC2's error when a launch asks for hibernation the instance could not do. */
export function checkHibernationAtLaunch(instanceType: string, windows: boolean, root: RootVolume, imageSizeGiB: number): void {
  if (!hibernationSupported(instanceType)) {
    throw unsupported(`The instance type '${instanceType}' does not support hibernation.`);
  }
  const ram = memoryGiB(instanceType);
  if (windows ? ram > 16 : ram >= 150) {
    throw unsupported(`Hibernation is not supported for instances with ${ram} GiB of memory (${windows ? 'Windows: at most 16 GiB' : 'must be less than 150 GiB'}).`);
  }
  if (!root.encrypted) {
    throw unsupported('The root volume must be encrypted to enable hibernation. Specify Encrypted=true for the root device, or launch from an encrypted AMI.');
  }
  const needed = imageSizeGiB + Math.ceil(ram);
  if (root.sizeGiB < needed) {
    throw unsupported(`The root volume (${root.sizeGiB} GiB) is too small to store the instance's memory (${ram} GiB) next to the image (${imageSizeGiB} GiB): at least ${needed} GiB is needed for hibernation.`);
  }
}

/** StopInstances with Hibernate=true on an instance launched without hibernation. */
export function notConfigured(instanceId: string): Ec2Error {
  return unsupported(`Hibernation is not configured for the instance: ${instanceId}`);
}
