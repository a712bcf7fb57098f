/**
 * The media bindings (an area module: src/graph/container.ts loads it into every run's container,
 * as it loads a plugin). Only binds: the media stages `source`, `decode` and `tokenize` as stage
 * contributions; the media roles' defaults (ffmpeg decoder, tokenizer, manifest loader), which
 * the container binds only where no plugin or test bound the role; and the model sizes
 * (src/core/config.ts) as the configs a graph's `config:` names (they fix the frames, image size and
 * mel bins media decodes to, and the model the method trains), tiny by default.
 */
import { ContainerModule } from 'inversify';
import { MODEL_CONFIGS } from '../core/config.ts';
import { RoleDefault, RunConfigPresets } from '../graph/roles.ts';
import { bindStages, type StageDefinition } from '../graph/stage.ts';
import { mediaDecoder, mediaManifestLoader, mediaTokenizer } from './default-roles.ts';
import { Decoder, ManifestLoader, Tokenizer } from './roles.ts';
import { stage as decode } from './stages/decode.ts';
import { stage as source } from './stages/source.ts';
import { stage as tokenize } from './stages/tokenize.ts';

export const MEDIA_STAGES: readonly StageDefinition[] = [source, decode, tokenize];

export default new ContainerModule(({ bind }) => {
  bindStages(bind, MEDIA_STAGES);
  bind<RunConfigPresets>(RunConfigPresets).toConstantValue({ what: 'model config', default: 'tiny', configs: MODEL_CONFIGS });
  bind<RoleDefault>(RoleDefault).toConstantValue({ token: Decoder, value: mediaDecoder });
  bind<RoleDefault>(RoleDefault).toConstantValue({ token: Tokenizer, value: mediaTokenizer });
  bind<RoleDefault>(RoleDefault).toConstantValue({ token: ManifestLoader, value: mediaManifestLoader });
});
