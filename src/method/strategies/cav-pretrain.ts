/**
 * `cav-pretrain`: stage 1 of the authors' protocol, CAV pre-training of the backbone. The finetune step
 * (Mode C: random 80% masking of full inputs; MAE + contrastive; no buffer, no AVM) over the
 * pre-training manifest fed as one task with no continual split. graphs/pretrain.yaml runs it.
 * Ref: spec §3.5 "Checkpoints" (cav_pretrain_audioset20k_base_init_check.sh: 25 epochs, lr 1e-4).
 */
import { ReplayBaselineStrategy, type ReplayBaselineOptions } from './replay-baseline.ts';

export const createCavPretrain = (options: ReplayBaselineOptions = {}) => new ReplayBaselineStrategy('cav-pretrain', options);
