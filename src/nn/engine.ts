/**
 * The numeric core's memory and kernels. An Engine is one instance of the WASM SIMD kernels
 * (src/nn/assembly/kernels.ts) with its own linear memory; tensors are float32 regions of that
 * memory handed out by a bump allocator. Each network owns an engine, so when the network is
 * dropped its memory goes with it and no manual freeing is needed. The module is compiled once
 * per process; instantiating it is cheap.
 */
import { readFileSync } from 'node:fs';

export const Act = { none: 0, relu: 1, leaky: 2, tanh: 3, sigmoid: 4 } as const;
export type ActName = keyof typeof Act;

export interface Kernels {
  memory: WebAssembly.Memory;
  gemm(
    M: number,
    N: number,
    K: number,
    a: number,
    sai: number,
    sak: number,
    b: number,
    ldb: number,
    c: number,
    ldc: number,
    accumulate: number,
  ): void;
  transpose(M: number, N: number, src: number, dst: number): void;
  biasAct(M: number, N: number, y: number, bias: number, act: number): void;
  actBackward(n: number, y: number, dy: number, act: number): void;
  colSum(M: number, N: number, src: number, dst: number, accumulate: number): void;
  addScaled(n: number, x: number, noise: number, s: number, dst: number): void;
  mse(M: number, N: number, y: number, t: number, grad: number): number;
  rowMse(M: number, N: number, y: number, t: number, out: number): void;
  softmaxCe(M: number, N: number, z: number, t: number, p: number, grad: number): number;
  bceLogits(n: number, z: number, t: number, p: number, grad: number): number;
  adam(
    n: number,
    p: number,
    g: number,
    m: number,
    v: number,
    lr: number,
    b1: number,
    b2: number,
    eps: number,
    wd: number,
    bc1: number,
    bc2: number,
  ): void;
  sumSquares(n: number, x: number): number;
  scale(n: number, x: number, s: number): void;
  allFinite(n: number, x: number): number;
  gatherRows(m: number, d: number, src: number, idx: number, dst: number): void;
  copy(n: number, src: number, dst: number): void;
  addGaussian(n: number, x: number, std: number, state: number, dst: number): void;
  dropout(n: number, x: number, p: number, state: number, mask: number): void;
  mulInPlace(n: number, x: number, mask: number): void;
  copyBlock(
    m: number,
    n: number,
    src: number,
    lds: number,
    dst: number,
    ldd: number,
    std: number,
    state: number,
  ): void;
  embedGather(
    m: number,
    e: number,
    K: number,
    table: number,
    src: number,
    lds: number,
    dst: number,
    ldd: number,
  ): void;
  embedScatter(
    m: number,
    e: number,
    K: number,
    gTable: number,
    src: number,
    lds: number,
    dIn: number,
    ldi: number,
  ): void;
  mseBlock(
    m: number,
    n: number,
    y: number,
    ldy: number,
    t: number,
    ldt: number,
    g: number,
    ldg: number,
    w: number,
  ): number;
  rowMseBlock(
    m: number,
    n: number,
    y: number,
    ldy: number,
    t: number,
    ldt: number,
    out: number,
    w: number,
  ): void;
  ceBlock(
    m: number,
    K: number,
    z: number,
    ldz: number,
    src: number,
    lds: number,
    g: number,
    ldg: number,
    out: number,
    w: number,
  ): number;
  lstmCell(B: number, H: number, gates: number, cPrev: number, c: number, h: number, ldh: number): void;
  lstmCellBackward(
    B: number,
    H: number,
    gates: number,
    c: number,
    cPrev: number,
    dh: number,
    ldh: number,
    dc: number,
    dG: number,
  ): void;
  addInPlace(n: number, dst: number, src: number): void;
  heapBase(): number;
}

let compiled: WebAssembly.Module | null = null;

function module(): WebAssembly.Module {
  if (!compiled) {
    const url = new URL('./kernels.wasm', import.meta.url);
    let bytes: Buffer;
    try {
      bytes = readFileSync(url);
    } catch {
      throw new Error(`the numeric kernels are missing (${url.pathname}); run \`npm run build\``);
    }
    compiled = new WebAssembly.Module(bytes);
  }
  return compiled;
}

/** A float32 region of an engine's memory: `rows × cols` values at byte offset `ptr`. */
export class Tensor {
  private view: Float32Array;

  constructor(
    readonly engine: Engine,
    readonly ptr: number,
    readonly rows: number,
    readonly cols: number,
  ) {
    this.view = new Float32Array(engine.kernels.memory.buffer, ptr, rows * cols);
  }

  get size(): number {
    return this.rows * this.cols;
  }

  /** The values, as a view into WASM memory (refreshed if the memory has grown). */
  get data(): Float32Array {
    if (this.view.buffer !== this.engine.kernels.memory.buffer)
      this.view = new Float32Array(this.engine.kernels.memory.buffer, this.ptr, this.size);
    return this.view;
  }
}

export class Engine {
  readonly kernels: Kernels;
  private top: number;

  constructor() {
    const inst = new WebAssembly.Instance(module(), {
      env: {
        abort: () => {
          throw new Error('numeric kernel aborted');
        },
      },
    });
    this.kernels = inst.exports as unknown as Kernels;
    this.top = align(this.kernels.heapBase());
  }

  /** Allocates `bytes` (16-byte aligned, zero-filled), growing the memory when needed. */
  allocBytes(bytes: number): number {
    const ptr = this.top;
    const end = align(ptr + bytes);
    const mem = this.kernels.memory;
    if (end > mem.buffer.byteLength) {
      const need = Math.ceil((end - mem.buffer.byteLength) / 65536);
      // Grow generously: fewer grows, fewer stale views.
      mem.grow(Math.max(need, mem.buffer.byteLength >>> 17));
    }
    this.top = end;
    return ptr;
  }

  tensor(rows: number, cols = 1): Tensor {
    return new Tensor(this, this.allocBytes(rows * cols * 4), rows, cols);
  }

  /** A region of `n` int32 values (indices, class targets). */
  int32(n: number): { ptr: number; data: () => Int32Array } {
    const ptr = this.allocBytes(n * 4);
    let view = new Int32Array(this.kernels.memory.buffer, ptr, n);
    return {
      ptr,
      data: () => {
        if (view.buffer !== this.kernels.memory.buffer)
          view = new Int32Array(this.kernels.memory.buffer, ptr, n);
        return view;
      },
    };
  }

  /** xoshiro128** state for the kernels' random draws, seeded from `seed`. */
  rngState(seed: number): number {
    const ptr = this.allocBytes(16);
    const s = new Uint32Array(this.kernels.memory.buffer, ptr, 4);
    // splitmix32 expansion of the seed; the state must not be all zero.
    let x = seed >>> 0;
    for (let i = 0; i < 4; i++) {
      x = (x + 0x9e3779b9) >>> 0;
      let z = x;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
      s[i] = (z ^ (z >>> 16)) >>> 0 || 1;
    }
    return ptr;
  }
}

function align(n: number): number {
  return (n + 15) & ~15;
}
