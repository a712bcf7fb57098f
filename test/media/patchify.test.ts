import test from 'ava';
import { loadGolden, countMismatches } from '../../src/core/golden.ts';
import { gatherTokens, patchifyAudio, patchifyVideo, videoTargetsFromPatches } from '../../src/media/patchify.ts';
import { golden } from '../helpers.ts';

const g4 = loadGolden(golden('g4_patches.json'));

test('G4: selected video patches and MAE targets match exactly', (t) => {
  const video = g4.get('video').data as Float32Array; // [2,4,3,64,64]
  const ids = g4.get('att_av_ids').data; // [2,64]
  const core = g4.get('core_video_patches').data; // [2,32,3,16,16]
  const target = g4.get('mae_target_video').data; // [2,32,768]
  const per = 4 * 3 * 64 * 64;
  for (let n = 0; n < 2; n++) {
    const tokens = patchifyVideo(video.subarray(n * per, (n + 1) * per), 4, 64, 64);
    t.is(tokens.length, 64 * 768);
    const sel = gatherTokens(tokens, 768, ids.subarray(n * 64, (n + 1) * 64), 32);
    t.is(countMismatches(sel, core.subarray(n * 32 * 768, (n + 1) * 32 * 768)), 0);
    t.is(countMismatches(videoTargetsFromPatches(sel), target.subarray(n * 32 * 768, (n + 1) * 32 * 768)), 0);
  }
});

test('G4: selected audio patches and MAE targets match exactly', (t) => {
  const audio = g4.get('audio').data as Float32Array; // [2,1,256,128]
  const ids = g4.get('att_va_ids').data; // [2,128]
  const core = g4.get('core_audio_patches').data; // [2,64,1,16,16]
  const target = g4.get('mae_target_audio').data; // [2,64,256]
  const per = 256 * 128;
  for (let n = 0; n < 2; n++) {
    const tokens = patchifyAudio(audio.subarray(n * per, (n + 1) * per), 256, 128);
    t.is(tokens.length, 128 * 256);
    const sel = gatherTokens(tokens, 256, ids.subarray(n * 128, (n + 1) * 128), 64);
    t.is(countMismatches(sel, core.subarray(n * 64 * 256, (n + 1) * 64 * 256)), 0);
    t.is(countMismatches(sel, target.subarray(n * 64 * 256, (n + 1) * 64 * 256)), 0);
  }
});

test('token order is t·h·w for video and t·f for audio', (t) => {
  // Encode each pixel's coordinates in its value so the order is readable.
  const T = 2, H = 32, W = 48;
  const v = new Float32Array(T * 3 * H * W);
  for (let i = 0; i < v.length; i++) v[i] = i;
  const tok = patchifyVideo(v, T, H, W);
  const gw = W / 16, gh = H / 16;
  const token = 1 * gh * gw + 1 * gw + 2; // t=1, h=1, w=2
  const first = tok[token * 768]; // c=0, p=0, q=0
  t.is(first, ((1 * 3 + 0) * H + 16) * W + 32);
  const a = new Float32Array(64 * 32).map((_, i) => i);
  const at = patchifyAudio(a, 64, 32);
  t.is(at[(3 * 2 + 1) * 256 + 1 * 16 + 2], (3 * 16 + 1) * 32 + 16 + 2); // t=3, f=1, p=1, q=2
});

test('bad shapes give errors naming the size at fault', (t) => {
  t.throws(() => patchifyVideo(new Float32Array(10), 1, 64, 64), { message: /expected T·C·H·W/ });
  t.throws(() => patchifyVideo(new Float32Array(3 * 60 * 64), 1, 60, 64), { message: /frame height 60/ });
  t.throws(() => patchifyAudio(new Float32Array(100 * 128), 100, 128), { message: /spectrogram length 100/ });
  t.throws(() => gatherTokens(new Float32Array(4 * 2), 2, [0, 7]), { message: /token id 7/ });
});
