/**
 * The model registry of a running service: bundles live under `<data dir>/models/<id>/`, their
 * metadata (version, training data fingerprint, metrics, threshold, which one is active) in the
 * store. Importing a bundle copies it in, so the registry never depends on files elsewhere.
 */
import { cpSync, existsSync, mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { UserError } from '../core/diagnostics.js';
import type { ModelRecord, Store } from '../store/store.js';
import { Model } from './bundle.js';

export class ModelRegistry {
  constructor(
    private readonly store: Store,
    readonly dir: string,
  ) {
    mkdirSync(dir, { recursive: true });
  }

  /** Saves `model` into the registry (if not there yet) and records it. */
  async register(model: Model, extra: Record<string, unknown> = {}): Promise<ModelRecord> {
    const path = join(this.dir, model.id);
    if (!existsSync(join(path, 'manifest.json'))) model.save(path);
    const rec = recordOf(model, path, extra);
    await this.store.putModel(rec);
    return rec;
  }

  /** Copies a bundle directory into the registry and records it (not activated). */
  async import(bundleDir: string): Promise<ModelRecord> {
    const model = Model.load(bundleDir);
    const path = join(this.dir, model.id);
    if (resolve(bundleDir) !== resolve(path)) cpSync(bundleDir, path, { recursive: true });
    const rec = recordOf(model, path, { importedFrom: resolve(bundleDir) });
    await this.store.putModel(rec);
    return rec;
  }

  async load(id: string): Promise<Model> {
    const rec = await this.store.getModel(id);
    if (!rec) throw new UserError(`no model '${id}' in the registry`);
    return Model.load(rec.path);
  }

  list(): Promise<ModelRecord[]> {
    return this.store.listModels();
  }

  get(id: string): Promise<ModelRecord | null> {
    return this.store.getModel(id);
  }

  async active(): Promise<ModelRecord | null> {
    return (await this.store.listModels()).find((m) => m.active) ?? null;
  }

  activate(id: string): Promise<void> {
    return this.store.activateModel(id);
  }
}

function recordOf(model: Model, path: string, extra: Record<string, unknown>): ModelRecord {
  const m = model.manifest;
  const fingerprint = m.training.files.length
    ? m.training.files.map((f) => f.fingerprint).join(',')
    : String(extra.fingerprint ?? '');
  return {
    id: m.id,
    kind: m.detector.kind,
    path,
    createdAt: Date.parse(m.createdAt) || Date.now(),
    registeredAt: Date.now(),
    threshold: m.threshold.value,
    fingerprint,
    info: {
      nadirVersion: m.nadirVersion,
      threshold: m.threshold,
      calibration: m.calibration,
      features: m.features.inputs.length,
      training: {
        files: m.training.files.map((f) => ({
          name: f.name,
          rows: f.trainingRows,
          fingerprint: f.fingerprint,
        })),
        fitRows: m.training.fitRows,
        calibrationRows: m.training.calibrationRows,
        labelCounts: m.training.labelCounts,
        supervised: m.training.supervised ?? false,
        seconds: m.training.seconds,
      },
      params: m.detector.params,
      ...extra,
    },
    active: false,
  };
}
