//! A compiled program: pipelines built once, memory planned once, one submission per run.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use futures_channel::oneshot;
use futures_util::lock::Mutex;
use tract_core::prelude::{DatumType, Tensor};

use crate::device::Gpu;
use crate::error::{Error, Result};
use crate::host;
use crate::plan::{BufId, Builder, Dt, Role};

/// A graph input: the buffer it is written to, its element count, its type in the model and on
/// the device.
#[derive(Debug)]
pub(crate) struct InputSlot {
    pub buf: BufId,
    pub len: usize,
    pub datum_type: DatumType,
    pub dt: Dt,
}

/// A graph output: the buffer it is read from, its shape and its type in the model.
#[derive(Debug)]
pub(crate) struct OutputSlot {
    pub buf: BufId,
    pub shape: Vec<usize>,
    pub datum_type: DatumType,
}

/// A graph compiled for one device. Runs are serialised: they share the program's buffers.
#[derive(Debug)]
pub struct Program {
    gpu: Gpu,
    steps: Vec<Step>,
    inputs: Vec<Input>,
    outputs: Vec<Output>,
    /// The fault word's readback, when a kernel checks its values, and the node of each dispatch
    /// (the word holds a dispatch's number + 1).
    fault: Option<(Output, Vec<String>)>,
    running: Mutex<()>,
}

#[derive(Debug)]
struct Input {
    buffer: wgpu::Buffer,
    len: usize,
    datum_type: DatumType,
    dt: Dt,
}

#[derive(Debug)]
struct Step {
    pipeline: wgpu::ComputePipeline,
    bind_group: wgpu::BindGroup,
    groups: [u32; 3],
}

#[derive(Debug)]
struct Output {
    source: wgpu::Buffer,
    staging: wgpu::Buffer,
    shape: Vec<usize>,
    datum_type: DatumType,
    /// Set by the map callback, cleared by [`Unmap`].
    mapped: Arc<AtomicBool>,
}

impl Program {
    pub(crate) async fn new(
        gpu: &Gpu,
        plan: Builder,
        inputs: Vec<InputSlot>,
        outputs: Vec<OutputSlot>,
    ) -> Result<Program> {
        let device = &gpu.device;
        let physical = allocate(gpu, &plan, &outputs.iter().map(|o| o.buf).collect::<Vec<_>>()).await?;
        let mut pipelines: HashMap<&str, wgpu::ComputePipeline> = HashMap::new();
        let mut steps = Vec::with_capacity(plan.dispatches.len());
        for dispatch in &plan.dispatches {
            let scope = device.push_error_scope(wgpu::ErrorFilter::Validation);
            let pipeline = match pipelines.get(dispatch.shader.as_str()) {
                Some(p) => p.clone(),
                None => {
                    let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
                        label: Some(&dispatch.node),
                        source: wgpu::ShaderSource::Wgsl(dispatch.shader.as_str().into()),
                    });
                    let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                        label: Some(&dispatch.node),
                        layout: None,
                        module: &module,
                        entry_point: Some("main"),
                        compilation_options: Default::default(),
                        cache: None,
                    });
                    pipelines.insert(&dispatch.shader, pipeline.clone());
                    pipeline
                }
            };
            let entries: Vec<wgpu::BindGroupEntry<'_>> = dispatch
                .bindings
                .iter()
                .enumerate()
                .map(|(ix, &buf)| wgpu::BindGroupEntry {
                    binding: ix as u32,
                    resource: physical[buf].as_entire_binding(),
                })
                .collect();
            let bind_group = device.create_bind_group(&wgpu::BindGroupDescriptor {
                label: Some(&dispatch.node),
                layout: &pipeline.get_bind_group_layout(0),
                entries: &entries,
            });
            if let Some(error) = scope.pop().await {
                return Err(Error::Rejected { node: dispatch.node.clone(), message: error.to_string() });
            }
            steps.push(Step { pipeline, bind_group, groups: dispatch.groups });
        }
        let inputs = inputs
            .into_iter()
            .map(|slot| Input {
                buffer: physical[slot.buf].clone(),
                len: slot.len,
                datum_type: slot.datum_type,
                dt: slot.dt,
            })
            .collect();
        let readback = |buf: BufId, shape: Vec<usize>, datum_type: DatumType| {
            let staging = device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("readback"),
                size: plan.buffers[buf].bytes,
                usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            });
            Output { source: physical[buf].clone(), staging, shape, datum_type, mapped: Arc::default() }
        };
        let outputs = outputs.into_iter().map(|o| readback(o.buf, o.shape, o.datum_type)).collect();
        let fault = plan.fault.map(|buf| {
            let nodes = plan.dispatches.iter().map(|d| d.node.clone()).collect();
            (readback(buf, vec![1], DatumType::U32), nodes)
        });
        Ok(Program { gpu: gpu.clone(), steps, inputs, outputs, fault, running: Mutex::new(()) })
    }

    /// The number of kernel launches per run.
    pub fn dispatches(&self) -> usize {
        self.steps.len()
    }

    /// Runs on `inputs` (in the graph's input order, each of the model's type and shape);
    /// returns the outputs in order.
    ///
    /// Natively the device is polled to completion inside; in a browser the readback completes
    /// on the event loop, so this never blocks there.
    pub async fn run(&self, inputs: &[Tensor]) -> Result<Vec<Tensor>> {
        if inputs.len() != self.inputs.len() {
            return Err(Error::Input {
                index: inputs.len(),
                expected: format!("{} inputs", self.inputs.len()),
                actual: format!("{} inputs", inputs.len()),
            });
        }
        let mut words = Vec::with_capacity(inputs.len());
        for (index, (tensor, input)) in inputs.iter().zip(&self.inputs).enumerate() {
            if tensor.len() != input.len || tensor.datum_type() != input.datum_type {
                return Err(Error::Input {
                    index,
                    expected: format!("{} elements of {:?}", input.len, input.datum_type),
                    actual: format!("{} elements of {:?}", tensor.len(), tensor.datum_type()),
                });
            }
            let encoded = host::encode(tensor, input.dt).map_err(|detail| Error::Input {
                index,
                expected: format!("{:?} values", input.datum_type),
                actual: detail,
            })?;
            words.push(encoded);
        }
        // Runs share the program's buffers: one at a time, from the upload to the readback.
        let _running = self.running.lock().await;
        let readbacks: Vec<&Output> = self.outputs.iter().chain(self.fault.as_ref().map(|(f, _)| f)).collect();
        // Whatever happens below, even this future being dropped mid-run, the staging buffers
        // are unmapped before the next run copies into them.
        let _unmap = Unmap(&readbacks);
        // An error scope is pushed and popped with no await between: natively scopes belong to
        // the thread, and a future may move between threads at each await.
        let (answers, errors) = {
            let scope = self.gpu.device.push_error_scope(wgpu::ErrorFilter::Validation);
            let answers = self.submit(&words, &readbacks);
            (answers, scope.pop())
        };
        let mut mapped = Vec::with_capacity(readbacks.len());
        for answer in answers? {
            mapped.push(answer.await);
        }
        if let Some(error) = errors.await {
            return Err(Error::Run(error.to_string()));
        }
        let mut results = Vec::with_capacity(readbacks.len());
        for (output, answer) in readbacks.iter().zip(mapped) {
            match answer {
                Ok(Ok(())) => {}
                Ok(Err(e)) => return Err(Error::Run(format!("reading an output back: {e}"))),
                Err(_) => return Err(Error::Run("an output's readback was dropped unanswered".into())),
            }
            let len: usize = output.shape.iter().product();
            let view = output.staging.get_mapped_range(..).map_err(|e| Error::Run(e.to_string()))?;
            results.push(from_bytes(&view, len));
        }
        if let Some((_, nodes)) = &self.fault
            && let Some(&code) = results.pop().as_deref().and_then(<[u32]>::first)
            && code != 0
        {
            let node = nodes.get(code as usize - 1).cloned().unwrap_or_else(|| format!("dispatch {code}"));
            return Err(Error::Fault { node });
        }
        self.outputs
            .iter()
            .zip(results)
            .map(|(output, words)| host::decode(&words, output.datum_type, &output.shape).map_err(Error::Run))
            .collect()
    }

    /// Uploads, dispatches and asks for `readbacks` back: one receiver per readback, answered
    /// when its staging buffer is mapped (natively, before this returns).
    fn submit(&self, inputs: &[Vec<u32>], readbacks: &[&Output]) -> Result<Vec<Readback>> {
        let device = &self.gpu.device;
        let queue = &self.gpu.queue;
        for (words, input) in inputs.iter().zip(&self.inputs) {
            if !words.is_empty() {
                queue.write_buffer(&input.buffer, 0, &to_bytes(words));
            }
        }
        if let Some((fault, _)) = &self.fault {
            queue.write_buffer(&fault.source, 0, &[0; 4]);
        }
        let mut encoder = device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("run") });
        {
            let mut pass =
                encoder.begin_compute_pass(&wgpu::ComputePassDescriptor { label: None, timestamp_writes: None });
            for step in &self.steps {
                pass.set_pipeline(&step.pipeline);
                pass.set_bind_group(0, &step.bind_group, &[]);
                let [x, y, z] = step.groups;
                pass.dispatch_workgroups(x, y, z);
            }
        }
        for output in readbacks {
            encoder.copy_buffer_to_buffer(&output.source, 0, &output.staging, 0, output.staging.size());
        }
        let submission = queue.submit([encoder.finish()]);
        let answers = readbacks
            .iter()
            .map(|output| {
                let (answer, readback) = oneshot::channel();
                let mapped = output.mapped.clone();
                output.staging.map_async(wgpu::MapMode::Read, .., move |result| {
                    mapped.store(result.is_ok(), Ordering::Release);
                    // The receiver is gone only when the run was dropped: nobody is waiting.
                    let _ = answer.send(result.map_err(|e| e.to_string()));
                });
                readback
            })
            .collect();
        // Natively this waits for the GPU and runs the map callbacks; browsers poll on their own.
        device
            .poll(wgpu::PollType::Wait { submission_index: Some(submission), timeout: None })
            .map_err(|e| Error::Run(e.to_string()))?;
        Ok(answers)
    }
}

/// An output's readback: answered with the map's result once its staging buffer is mapped.
type Readback = oneshot::Receiver<std::result::Result<(), String>>;

/// Unmaps, when dropped, the staging buffers a run mapped (unmapping one that is not mapped is
/// a validation error, hence the flags).
struct Unmap<'a>(&'a [&'a Output]);

impl Drop for Unmap<'_> {
    fn drop(&mut self) {
        for output in self.0 {
            if output.mapped.swap(false, Ordering::AcqRel) {
                output.staging.unmap();
            }
        }
    }
}

/// Physical buffers for the logical ones: inputs, constants and outputs get their own;
/// intermediates share, each taking a free buffer at its first write and giving it back after
/// its last read (best fit by size).
async fn allocate(gpu: &Gpu, plan: &Builder, outputs: &[BufId]) -> Result<Vec<wgpu::Buffer>> {
    let device = &gpu.device;
    let usage = wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST;
    let scope = device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
    let mut last_use = vec![None; plan.buffers.len()];
    for (step, dispatch) in plan.dispatches.iter().enumerate() {
        for &buf in &dispatch.bindings {
            last_use[buf] = Some(step);
        }
    }
    let create = |bytes: u64| {
        device.create_buffer(&wgpu::BufferDescriptor { label: None, size: bytes, usage, mapped_at_creation: false })
    };
    let mut physical: Vec<Option<wgpu::Buffer>> = vec![None; plan.buffers.len()];
    for (ix, buffer) in plan.buffers.iter().enumerate() {
        match &buffer.role {
            Role::Input | Role::Fault => physical[ix] = Some(create(buffer.bytes)),
            Role::Const(values) => {
                let b = create(buffer.bytes);
                if !values.is_empty() {
                    gpu.queue.write_buffer(&b, 0, &to_bytes(values));
                }
                physical[ix] = Some(b);
            }
            Role::Temp if outputs.contains(&ix) || last_use[ix].is_none() => physical[ix] = Some(create(buffer.bytes)),
            Role::Temp => {}
        }
    }
    let mut free: Vec<wgpu::Buffer> = Vec::new();
    for (step, dispatch) in plan.dispatches.iter().enumerate() {
        for &buf in &dispatch.bindings {
            if physical[buf].is_none() {
                let bytes = plan.buffers[buf].bytes;
                let best = free
                    .iter()
                    .enumerate()
                    .filter(|(_, b)| b.size() >= bytes)
                    .min_by_key(|(_, b)| b.size())
                    .map(|(i, _)| i);
                physical[buf] = Some(match best {
                    Some(i) => free.swap_remove(i),
                    None => create(bytes),
                });
            }
        }
        for &buf in &dispatch.bindings {
            let pooled = matches!(plan.buffers[buf].role, Role::Temp) && !outputs.contains(&buf);
            if pooled
                && last_use[buf] == Some(step)
                && !free.iter().any(|b| Some(b) == physical[buf].as_ref())
                && let Some(b) = physical[buf].clone()
            {
                free.push(b);
            }
        }
    }
    if let Some(error) = scope.pop().await {
        return Err(Error::Device(format!("allocating the program's buffers: {error}")));
    }
    physical.into_iter().map(|b| b.ok_or_else(|| Error::Run("a buffer was never placed".into()))).collect()
}

fn to_bytes(words: &[u32]) -> Vec<u8> {
    words.iter().flat_map(|w| w.to_le_bytes()).collect()
}

fn from_bytes(bytes: &[u8], len: usize) -> Vec<u32> {
    bytes.chunks_exact(4).take(len).map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()
}
