/**
 * mp4-header: stream facts of an MP4 / MOV / M4V file read straight from its `moov` box, so a decode
 * needs no separate `ffmpeg -i` probe process (about 10 ms per clip).
 *
 * Input: a path. Output: `{ ok: true, info: MediaInfo }` with the facts `ffmpeg -i` would print, or
 * `{ ok: false, reason }` whenever there is any doubt — the caller then asks ffmpeg (probe.ts). It
 * never throws for bad input.
 *
 * What is read (ISO/IEC 14496-12 box layout; QuickTime sound descriptions v0–v2):
 *   - top-level boxes, 32- and 64-bit sizes (size 0 = to the end of the file), `moov` anywhere;
 *   - `mvhd` timescale + duration → durationSec, rounded to 1/100 s exactly as ffmpeg's dump prints it
 *     (so frame times match the probe path);
 *   - per `trak`: `hdlr` type (`vide` / `soun`, first of each wins, as `0:v:0` / `0:a:0`), `tkhd`
 *     matrix and size, `mdhd` timescale, `stsd` sample entry, `stts` (average fps), `stsz` count;
 *   - video: width × height of the visual sample entry; audio: AAC AudioSpecificConfig (`esds`) for
 *     the channel count and sample rate.
 * Doubt (→ fall back): no `ftyp`/`moov` signature, a box running past the end (truncated), `moov`
 * over 64 MiB, fragmented files (`mvex`), compressed `cmov`, a zero/unknown duration or timescale,
 * a rotated or anamorphic video track (tkhd ≠ sample entry size), several sample entries, a track
 * with no samples, audio other than AAC-LC-family `mp4a`, explicit SBR/PS or a PCE channel layout.
 * Known limit: implicit (in-band) HE-AAC signalling is invisible here; ffmpeg would report the
 * doubled sample rate (and stereo for PS). The decode resamples to 16 kHz either way; a PS stream is
 * then mixed down to mono by ffmpeg ((L + R) / 2, the same mean the decode takes).
 * Ref: spec §1.2 (the decode's frame times need the duration).
 */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import type { MediaInfo } from './probe.ts';

export type Mp4HeaderResult = { ok: true; info: MediaInfo } | { ok: false; reason: string };

const MAX_MOOV_BYTES = 64 << 20;
/** Top-level box types that mark an ISO BMFF / QuickTime file. */
const TOP_LEVEL = new Set(['ftyp', 'moov', 'mdat', 'free', 'skip', 'wide', 'uuid', 'pdin', 'meta', 'styp', 'sidx', 'moof', 'mfra', 'pnot', 'junk']);
const AAC_RATES = [96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350];
/** AAC channelConfiguration → channel count (0 = defined by a PCE: doubt). */
const AAC_CHANNELS: Record<number, number> = { 1: 1, 2: 2, 3: 3, 4: 4, 5: 5, 6: 6, 7: 8, 11: 7, 12: 8, 13: 24, 14: 8 };
/** mp4a objectTypeIndication values that carry AAC (MPEG-4, MPEG-2 Main/LC/SSR). */
const AAC_OTI = new Set([0x40, 0x66, 0x67, 0x68]);
const IDENTITY_MATRIX = [0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x40000000];

class Doubt extends Error {}
const doubt = (reason: string): never => { throw new Doubt(reason); };

interface Box { type: string; start: number; end: number } // start = payload start

/** Child boxes of buf[from, to). */
function* boxes(buf: Buffer, from: number, to: number): Generator<Box> {
  let o = from;
  while (o + 8 <= to) {
    let size = buf.readUInt32BE(o), header = 8;
    const type = buf.toString('latin1', o + 4, o + 8);
    if (size === 1) {
      if (o + 16 > to) doubt(`box ${type}: cut 64-bit size`);
      size = Number(buf.readBigUInt64BE(o + 8)); header = 16;
    } else if (size === 0) size = to - o;
    if (size < header || o + size > to) doubt(`box ${type} at ${o} runs past its parent`);
    yield { type, start: o + header, end: o + size };
    o += size;
  }
}

const child = (buf: Buffer, parent: Box, type: string) => {
  for (const b of boxes(buf, parent.start, parent.end)) if (b.type === type) return b;
  return undefined;
};
const need = (b: Box | undefined, what: string): Box => b ?? doubt(`no ${what} box`);

/** Finds `moov` among the top-level boxes, reading only box headers until it. */
function readMoov(fd: number, fileSize: number): Buffer {
  const head = Buffer.alloc(16);
  let o = 0, first = true;
  while (o + 8 <= fileSize) {
    readSync(fd, head, 0, 16, o);
    let size = head.readUInt32BE(0), header = 8;
    const type = head.toString('latin1', 4, 8);
    if (first && !TOP_LEVEL.has(type)) doubt(`no ISO BMFF signature (first box "${type}")`);
    first = false;
    if (size === 1) { size = Number(head.readBigUInt64BE(8)); header = 16; }
    else if (size === 0) size = fileSize - o;
    if (size < header || o + size > fileSize) doubt(`top-level box ${type} runs past the end of the file (truncated?)`);
    if (type === 'moof') doubt('fragmented file (moof before moov)');
    if (type === 'moov') {
      if (size > MAX_MOOV_BYTES) doubt(`moov is ${size} bytes`);
      const moov = Buffer.alloc(size - header);
      if (readSync(fd, moov, 0, moov.length, o + header) !== moov.length) doubt('short read of moov');
      return moov;
    }
    o += size;
  }
  return doubt('no moov box');
}

/** ffmpeg's `Duration: hh:mm:ss.cc` (rounded to 10 ms), then parsed back as probe.ts does. */
function ffmpegDumpDuration(duration: number, timescale: number): number {
  const us = Math.round((duration * 1e6) / timescale) + 5000;
  const totalSec = Math.floor(us / 1e6), centis = Math.floor(((us % 1e6) * 100) / 1e6);
  const h = Math.floor(totalSec / 3600), m = Math.floor((totalSec % 3600) / 60), s = totalSec % 60;
  return h * 3600 + m * 60 + Number(`${s}.${String(centis).padStart(2, '0')}`);
}

/** Reads an MPEG-4 descriptor length (1–4 bytes of 7 bits). */
function descriptorLength(buf: Buffer, o: number): [number, number] {
  let len = 0;
  for (let i = 0; i < 4; i++) {
    const b = buf[o++];
    len = (len << 7) | (b & 0x7f);
    if (!(b & 0x80)) break;
  }
  return [len, o];
}

/** AudioSpecificConfig inside an `esds` box → { sampleRate, channels }. */
function aacConfig(buf: Buffer, esds: Box): { sampleRate: number; channels: number } {
  let o = esds.start + 4; // version/flags
  if (buf[o++] !== 0x03) doubt('esds without ES_Descriptor');
  [, o] = descriptorLength(buf, o);
  const flags = buf[o + 2];
  o += 3;
  if (flags & 0x80) o += 2;
  if (flags & 0x40) o += 1 + buf[o];
  if (flags & 0x20) o += 2;
  if (buf[o++] !== 0x04) doubt('esds without DecoderConfigDescriptor');
  [, o] = descriptorLength(buf, o);
  const oti = buf[o];
  if (!AAC_OTI.has(oti)) doubt(`mp4a objectTypeIndication 0x${oti.toString(16)} is not AAC`);
  o += 13;
  if (buf[o++] !== 0x05) doubt('esds without DecoderSpecificInfo');
  [, o] = descriptorLength(buf, o);
  if (o + 2 > esds.end) doubt('esds AudioSpecificConfig cut');
  // Bit reader over the AudioSpecificConfig.
  let bit = o * 8;
  const bits = (n: number) => {
    let v = 0;
    for (let i = 0; i < n; i++, bit++) v = (v << 1) | ((buf[bit >> 3] >> (7 - (bit & 7))) & 1);
    return v;
  };
  let objectType = bits(5);
  if (objectType === 31) objectType = 32 + bits(6);
  if (objectType === 5 || objectType === 29) doubt('explicit SBR/PS (HE-AAC)');
  const rateIndex = bits(4);
  const sampleRate = rateIndex === 15 ? bits(24) : AAC_RATES[rateIndex] ?? doubt(`AAC sample rate index ${rateIndex}`);
  const config = bits(4);
  const channels = AAC_CHANNELS[config] ?? doubt(`AAC channel configuration ${config}`);
  return { sampleRate, channels };
}

function sampleCount(buf: Buffer, stbl: Box): number {
  const stsz = child(buf, stbl, 'stsz') ?? child(buf, stbl, 'stz2');
  return stsz ? buf.readUInt32BE(stsz.start + 8) : 0;
}

function parseMoov(buf: Buffer): MediaInfo {
  const moov: Box = { type: 'moov', start: 0, end: buf.length };
  if (child(buf, moov, 'mvex')) doubt('fragmented file (mvex)');
  if (child(buf, moov, 'cmov')) doubt('compressed moov');
  const mvhd = need(child(buf, moov, 'mvhd'), 'mvhd');
  const v1 = buf[mvhd.start] === 1;
  const timescale = buf.readUInt32BE(mvhd.start + (v1 ? 20 : 12));
  const duration = v1 ? Number(buf.readBigUInt64BE(mvhd.start + 24)) : buf.readUInt32BE(mvhd.start + 16);
  if (!timescale || !duration || (!v1 && duration === 0xffffffff)) doubt(`mvhd timescale ${timescale} / duration ${duration}`);
  const info: MediaInfo = { durationSec: ffmpegDumpDuration(duration, timescale), width: 0, height: 0, fps: 0, sampleRate: 0, channels: 0, hasAudio: false, hasVideo: false };

  for (const trak of boxes(buf, 0, buf.length)) {
    if (trak.type !== 'trak') continue;
    const mdia = need(child(buf, trak, 'mdia'), 'mdia');
    const hdlr = need(child(buf, mdia, 'hdlr'), 'hdlr');
    const kind = buf.toString('latin1', hdlr.start + 8, hdlr.start + 12);
    if ((kind !== 'vide' || info.hasVideo) && (kind !== 'soun' || info.hasAudio)) continue;
    const stbl = need(child(buf, need(child(buf, mdia, 'minf'), 'minf'), 'stbl'), 'stbl');
    const stsd = need(child(buf, stbl, 'stsd'), 'stsd');
    if (buf.readUInt32BE(stsd.start + 4) !== 1) doubt(`${kind} track with ${buf.readUInt32BE(stsd.start + 4)} sample entries`);
    const entry = boxes(buf, stsd.start + 8, stsd.end).next().value ?? doubt('empty stsd');
    const frames = sampleCount(buf, stbl);
    if (frames === 0) doubt(`${kind} track without samples`);
    if (kind === 'vide') {
      const width = buf.readUInt16BE(entry.start + 24), height = buf.readUInt16BE(entry.start + 26);
      const tkhd = need(child(buf, trak, 'tkhd'), 'tkhd');
      const m = tkhd.start + (buf[tkhd.start] === 1 ? 52 : 40);
      for (let i = 0; i < 9; i++) if (buf.readInt32BE(m + 4 * i) !== IDENTITY_MATRIX[i]) doubt('rotated or transformed video track');
      if (buf.readUInt32BE(m + 36) >>> 16 !== width || buf.readUInt32BE(m + 40) >>> 16 !== height) doubt('display size differs from the coded size (anamorphic)');
      if (!width || !height) doubt('video sample entry without a size');
      // Average frame rate as ffmpeg computes it (samples · timescale / summed sample durations).
      const mdhd = need(child(buf, mdia, 'mdhd'), 'mdhd');
      const trackScale = buf.readUInt32BE(mdhd.start + (buf[mdhd.start] === 1 ? 20 : 12));
      const stts = need(child(buf, stbl, 'stts'), 'stts');
      let count = 0, ticks = 0;
      for (let i = 0, n = buf.readUInt32BE(stts.start + 4); i < n; i++) {
        const c = buf.readUInt32BE(stts.start + 8 + 8 * i), d = buf.readUInt32BE(stts.start + 12 + 8 * i);
        count += c; ticks += c * d;
      }
      if (!ticks || !trackScale) doubt('video track without timing');
      Object.assign(info, { hasVideo: true, width, height, fps: Math.round((count * trackScale * 100) / ticks) / 100 });
    } else {
      if (entry.type !== 'mp4a') doubt(`audio codec ${entry.type}`);
      const version = buf.readUInt16BE(entry.start + 8); // QuickTime sound description version
      const fixed = entry.start + 28 + (version === 1 ? 16 : version === 2 ? 36 : 0);
      if (version > 2) doubt(`sound description version ${version}`);
      // MP4 puts esds in the sample entry; QuickTime v1/v2 descriptions may wrap it in a 'wave' box.
      const extensions: Box = { type: entry.type, start: fixed, end: entry.end };
      const wave = child(buf, extensions, 'wave');
      const esds = need(child(buf, extensions, 'esds') ?? (wave && child(buf, wave, 'esds')), 'esds');
      Object.assign(info, { hasAudio: true, ...aacConfig(buf, esds) });
    }
  }
  return info;
}

/** Stream facts from the MP4/MOV header, or the reason to ask ffmpeg instead. */
export function readMp4Header(file: string): Mp4HeaderResult {
  let fd: number | undefined;
  try {
    fd = openSync(file, 'r');
    const size = fstatSync(fd).size;
    return { ok: true, info: parseMoov(readMoov(fd, size)) };
  } catch (e) {
    if (e instanceof Doubt) return { ok: false, reason: e.message };
    // Out-of-range reads of a damaged box, or I/O errors: ffmpeg decides.
    return { ok: false, reason: `unreadable header: ${(e as Error).message}` };
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}
