import { buildApp } from './app.ts';

// `npx cdk synth|deploy` from deploy/aws (cdk.json runs this file).
buildApp().app.synth();
