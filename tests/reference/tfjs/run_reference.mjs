// Test-only: run TFJS graph models with the real TFJS runtime (pure-JS CPU backend), no network.
// Usage: node run_reference.mjs JOB.json
// JOB.json: {"jobs": [{"model_json": ".../faceres.json", "output": "global_pooling/Mean",
//            "input": "in.f32", "shape": [N, H, W, C], "result": "out.f32"}]}
// Inputs and results are raw little-endian float32; results get a sibling RESULT.json with the shape.
import fs from 'node:fs';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';

// An IO handler that reads model.json and its weight shards from disk (loadGraphModel would fetch).
function fileHandler(modelJson) {
  return {
    load: async () => {
      const model = JSON.parse(fs.readFileSync(modelJson, 'utf8'));
      const dir = path.dirname(modelJson);
      const weightSpecs = [];
      const shards = [];
      for (const group of model.weightsManifest) {
        weightSpecs.push(...group.weights);
        for (const p of group.paths) shards.push(fs.readFileSync(path.join(dir, p)));
      }
      const all = Buffer.concat(shards);
      return {
        modelTopology: model.modelTopology,
        weightSpecs,
        weightData: all.buffer.slice(all.byteOffset, all.byteOffset + all.byteLength),
        format: model.format,
        generatedBy: model.generatedBy,
        convertedBy: model.convertedBy,
        signature: model.signature,
      };
    },
  };
}

function readF32(file, shape) {
  const buf = fs.readFileSync(file);
  const data = new Float32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength));
  return tf.tensor(data, shape, 'float32');
}

async function runJob(job) {
  const model = await tf.loadGraphModel(fileHandler(job.model_json));
  const input = readF32(job.input, job.shape);
  const started = Date.now();
  const output = model.execute(input, job.output);
  const data = await output.data();
  const ms = Date.now() - started;
  fs.writeFileSync(job.result, Buffer.from(data.buffer, data.byteOffset, data.byteLength));
  fs.writeFileSync(job.result + '.json', JSON.stringify({ shape: output.shape, ms, tfjs: tf.version.tfjs, backend: tf.getBackend() }));
  console.log(`${path.basename(job.model_json)} -> ${job.output} ${JSON.stringify(output.shape)} in ${ms} ms (${tf.getBackend()})`);
  tf.dispose([input, output]);
  model.dispose();
}

await tf.setBackend('cpu');
await tf.ready();
const { jobs } = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
for (const job of jobs) await runJob(job);
