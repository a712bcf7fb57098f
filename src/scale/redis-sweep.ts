import type { SweepExecutor } from '../sweep/sweep.ts';
export const redisSweepExecutor: SweepExecutor = async () => { throw new Error('not yet'); };
