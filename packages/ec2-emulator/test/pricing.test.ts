// The Price List API on the emulator's port, through the real @aws-sdk/client-pricing: JSON 1.1,
// GetProducts filters and paging, PriceList entries as JSON strings, JSON errors.

import { DescribeServicesCommand, GetProductsCommand, PricingClient } from '@aws-sdk/client-pricing';
import type { Filter } from '@aws-sdk/client-pricing';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Ec2Emulator } from '../src/index.ts';
import { expectEc2Error, startTestEmulator } from './support.ts';

let emulator: Ec2Emulator;
let pricing: PricingClient;

beforeEach(async () => {
  emulator = await startTestEmulator();
  pricing = new PricingClient({ region: 'us-east-1', endpoint: emulator.url, credentials: { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'x' }, maxAttempts: 1 });
});

afterEach(async () => {
  pricing.destroy();
  await emulator.close();
});

const term = (Field: string, Value: string): Filter => ({ Type: 'TERM_MATCH', Field, Value });
const onDemandLinux = (regionCode: string, instanceType: string): Filter[] => [
  term('regionCode', regionCode),
  term('instanceType', instanceType),
  term('operatingSystem', 'Linux'),
  term('tenancy', 'Shared'),
  term('capacitystatus', 'Used'),
  term('preInstalledSw', 'NA'),
];

interface PriceDocument {
  product: { sku: string; attributes: Record<string, string> };
  terms: { OnDemand: Record<string, { priceDimensions: Record<string, { unit: string; pricePerUnit: { USD: string } }> }>; Reserved?: unknown };
}

const onDemandUsd = (doc: PriceDocument) => Object.values(Object.values(doc.terms.OnDemand)[0]!.priceDimensions)[0]!.pricePerUnit.USD;

describe('AWSPriceListService on the emulator', () => {
  it('GetProducts with the full filter set returns exactly one product, its on-demand price per hour as a JSON string', async () => {
    const out = await pricing.send(new GetProductsCommand({ ServiceCode: 'AmazonEC2', Filters: onDemandLinux('us-east-1', 'g5.xlarge'), FormatVersion: 'aws_v1' }));
    expect(out.FormatVersion).toBe('aws_v1');
    expect(out.PriceList).toHaveLength(1);
    // On the wire a JSON string; the SDK hands it over as a lazy JSON string.
    const doc = JSON.parse(String(out.PriceList![0])) as PriceDocument;
    expect(doc.product.attributes).toMatchObject({ instanceType: 'g5.xlarge', regionCode: 'us-east-1', location: 'US East (N. Virginia)', operatingSystem: 'Linux' });
    expect(onDemandUsd(doc)).toBe('1.0060000000');
    expect(doc.terms.Reserved).toBeDefined();
    expect(emulator.control.callCounts().byAction.GetProducts).toBe(1);
  });

  it('without the capacity, tenancy and software filters several products match (a client must filter), and the region changes the price', async () => {
    const loose = await pricing.send(new GetProductsCommand({ ServiceCode: 'AmazonEC2', Filters: [term('regionCode', 'us-east-1'), term('instanceType', 'm5.large')] }));
    const prices = loose.PriceList!.map((p: unknown) => onDemandUsd(JSON.parse(String(p)) as PriceDocument));
    expect(prices.length).toBeGreaterThan(3);
    expect(prices).toContain('0.0000000000');
    const frankfurt = await pricing.send(new GetProductsCommand({ ServiceCode: 'AmazonEC2', Filters: onDemandLinux('eu-central-1', 'm5.large') }));
    expect(onDemandUsd(JSON.parse(String(frankfurt.PriceList![0])) as PriceDocument)).toBe('0.1152000000');
    const windows = await pricing.send(new GetProductsCommand({ ServiceCode: 'AmazonEC2', Filters: [...onDemandLinux('us-east-1', 'm5.large').slice(0, 2), term('operatingSystem', 'windows'), term('tenancy', 'Shared'), term('capacitystatus', 'Used'), term('preInstalledSw', 'NA')] }));
    expect(onDemandUsd(JSON.parse(String(windows.PriceList![0])) as PriceDocument)).toBe('0.1880000000');
  });

  it('pages with MaxResults and NextToken; a price set through the control API is served', async () => {
    const seen: string[] = [];
    let NextToken: string | undefined;
    do {
      const page = await pricing.send(new GetProductsCommand({ ServiceCode: 'AmazonEC2', Filters: [term('regionCode', 'us-west-2')], MaxResults: 20, NextToken }));
      expect(page.PriceList!.length).toBeLessThanOrEqual(20);
      seen.push(...page.PriceList!.map((p: unknown) => (JSON.parse(String(p)) as PriceDocument).product.sku));
      NextToken = page.NextToken;
    } while (NextToken);
    expect(new Set(seen).size).toBe(seen.length);
    expect(seen.length).toBeGreaterThan(20);

    emulator.control.setOnDemandPrice('us-east-1', 'g5.xlarge', 0.9);
    const out = await pricing.send(new GetProductsCommand({ ServiceCode: 'AmazonEC2', Filters: onDemandLinux('us-east-1', 'g5.xlarge') }));
    expect(onDemandUsd(JSON.parse(String(out.PriceList![0])) as PriceDocument)).toBe('0.9000000000');
    const services = await pricing.send(new DescribeServicesCommand({ ServiceCode: 'AmazonEC2' }));
    expect(services.Services?.[0]?.AttributeNames).toContain('capacitystatus');
  });

  it('answers bad requests with the Price List API errors the SDK knows', async () => {
    await expectEc2Error(pricing.send(new GetProductsCommand({ ServiceCode: 'AmazonEC2', Filters: [{ Type: 'FUZZY' as 'TERM_MATCH', Field: 'instanceType', Value: 'x' }] })), 'InvalidParameterException', 400);
    await expectEc2Error(pricing.send(new GetProductsCommand({ ServiceCode: 'AmazonEC2', NextToken: 'garbage' })), 'InvalidNextTokenException', 400);
    await expectEc2Error(pricing.send(new GetProductsCommand({ ServiceCode: 'AmazonS3' })), 'NotFoundException', 400);
    await expectEc2Error(pricing.send(new GetProductsCommand({ ServiceCode: 'AmazonEC2', MaxResults: 500 })), 'InvalidParameterException', 400);
    emulator.control.injectFault({ action: 'GetProducts', code: 'RequestLimitExceeded', status: 400, count: 1 });
    await expectEc2Error(pricing.send(new GetProductsCommand({ ServiceCode: 'AmazonEC2' })), 'ThrottlingException', 400);
    emulator.control.refuseAccessKey('AKIDEXAMPLE');
    await expectEc2Error(pricing.send(new GetProductsCommand({ ServiceCode: 'AmazonEC2' })), 'UnrecognizedClientException');
  });
});
