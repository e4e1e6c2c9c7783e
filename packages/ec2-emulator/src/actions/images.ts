// DescribeImages: by id, by owner (`self`, `amazon`, an account id) and by filters.

import { rootSnapshotGiB } from '../hibernation.ts';
import { Ec2Error } from '../errors.ts';
import { compileFilters } from '../filters.ts';
import type { FieldMap } from '../filters.ts';
import { isWellFormedId } from '../ids.ts';
import { pageByIndex, readPageRequest } from '../paging.ts';
import type { ImageRecord } from '../types.ts';
import { el, items, tagSet, text } from '../xml.ts';
import type { ActionDefinition } from './context.ts';

const IMAGE_FIELDS: FieldMap<ImageRecord> = {
  'image-id': (i) => i.imageId,
  name: (i) => i.name,
  description: (i) => i.description,
  'owner-id': (i) => i.ownerId,
  'owner-alias': (i) => i.ownerAlias,
  'is-public': (i) => String(i.public),
  architecture: (i) => i.architecture,
  platform: (i) => i.platform,
  'platform-details': (i) => i.platformDetails,
  state: () => 'available',
  'image-type': () => 'machine',
  'root-device-type': () => 'ebs',
  'root-device-name': (i) => i.rootDeviceName,
  'virtualization-type': () => 'hvm',
  hypervisor: () => 'xen',
  'creation-date': (i) => i.creationDate,
};

function imageXml(image: ImageRecord): string {
  return (
    text('imageId', image.imageId) +
    text('imageLocation', `${image.ownerAlias ?? image.ownerId}/${image.name}`) +
    text('imageState', 'available') +
    text('imageOwnerId', image.ownerId) +
    text('creationDate', image.creationDate) +
    text('isPublic', image.public) +
    text('architecture', image.architecture) +
    text('imageType', 'machine') +
    text('platform', image.platform) +
    text('platformDetails', image.platformDetails) +
    text('usageOperation', image.platform === 'windows' ? 'RunInstances:0002' : 'RunInstances') +
    text('imageOwnerAlias', image.ownerAlias) +
    text('name', image.name) +
    text('description', image.description) +
    text('rootDeviceType', 'ebs') +
    text('rootDeviceName', image.rootDeviceName) +
    items('blockDeviceMapping', [image], (i) =>
      text('deviceName', i.rootDeviceName) +
      el('ebs', text('deleteOnTermination', true), text('volumeSize', rootSnapshotGiB(i)), text('volumeType', 'gp3'), text('encrypted', i.rootEncrypted === true)),
    ) +
    text('virtualizationType', 'hvm') +
    tagSet(image.tags) +
    text('hypervisor', 'xen') +
    text('enaSupport', true) +
    text('sriovNetSupport', 'simple') +
    text('bootMode', 'uefi-preferred')
  );
}

export const describeImages: ActionDefinition = {
  mutates: false,
  handle({ store, params }) {
    const ids = params.list('ImageId');
    for (const id of ids) {
      if (!isWellFormedId('ami', id)) throw new Ec2Error('InvalidAMIID.Malformed', `Invalid id: "${id}" (expecting "ami-...")`);
    }
    const missing = ids.filter((id) => !store.images.has(id));
    if (missing.length > 0) throw new Ec2Error('InvalidAMIID.NotFound', `The image id '[${missing.join(', ')}]' does not exist`);
    const owners = params.list('Owner').map((o) => (o === 'self' ? store.accountId : o));
    const ownedBy = (i: ImageRecord): boolean =>
      owners.length === 0 || owners.includes(i.ownerId) || (i.ownerAlias !== undefined && owners.includes(i.ownerAlias));
    const matches = compileFilters(params.filters(), IMAGE_FIELDS, (i: ImageRecord) => i.tags);
    const candidates = ids.length > 0 ? [...new Set(ids)].map((id) => store.images.get(id)) : [...store.images.values()];
    const selected = candidates.filter((i): i is ImageRecord => i !== undefined && ownedBy(i) && matches(i));
    const page = pageByIndex(selected, readPageRequest(params, 5, 1000));
    return items('imagesSet', page.items, imageXml) + text('nextToken', page.nextToken);
  },
};
