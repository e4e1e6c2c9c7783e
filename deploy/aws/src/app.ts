import { App, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { configFromContext, type DeploymentConfig } from './config.ts';
import { StagedoorStack } from './stack.ts';

export const STACK_NAME = 'Stagedoor';

/**
 * The app: one stack, checked by cdk-nag's AwsSolutions pack (a finding not acknowledged in nag.ts fails
 * `cdk synth`; the tests run the same pack with validateScope). Used by `cdk` (main.ts), the release's
 * template writer and the tests.
 */
export function buildApp(options: { config?: DeploymentConfig; outdir?: string } = {}): { app: App; stack: StagedoorStack } {
  // No CDKMetadata resource: its contents change with the CDK version, and the template is a
  // release artifact with a snapshot test.
  const app = new App({ outdir: options.outdir, analyticsReporting: false });
  const config = options.config ?? configFromContext(app.node.tryGetContext('stagedoor'));
  const stack = new StagedoorStack(app, STACK_NAME, { config });
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app, { verbose: true, writeSuppressionsToCloudFormation: true }));
  return { app, stack };
}
