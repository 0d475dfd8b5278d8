//! The wasm engine every module shares: Cranelift, the component model, a pooling allocator
//! sized from the limits (instances and memories pre-reserved, so instantiating a module per
//! request is a few microseconds), and epoch interruption driven by one ticker thread.

use std::time::Duration;

use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use crate::config::{Limits, ModuleConfig};

/// How often the epoch advances: the granularity of every module's execution deadline.
pub(crate) const TICK: Duration = Duration::from_millis(10);

const MIB: usize = 1 << 20;

pub(crate) fn engine(limits: &Limits, modules: &[ModuleConfig]) -> wasmtime::Result<Engine> {
    let instances = limits.instances;
    let largest_memory = modules.iter().map(|m| m.memory_mb as usize).max().unwrap_or(64) * MIB;
    let mut pooling = PoolingAllocationConfig::default();
    // A component is several core instances (the program and its adapters), each with at most a
    // few memories and tables.
    pooling
        .total_component_instances(instances)
        .total_core_instances(instances.saturating_mul(16))
        .total_memories(instances.saturating_mul(2))
        .total_tables(instances.saturating_mul(4))
        .total_stacks(instances)
        .max_memory_size(largest_memory);
    let mut config = Config::new();
    config
        .wasm_component_model(true)
        .epoch_interruption(true)
        .allocation_strategy(InstanceAllocationStrategy::Pooling(pooling));
    let engine = Engine::new(&config)?;
    let weak = engine.weak();
    std::thread::Builder::new().name("sextant-epoch".to_owned()).spawn(move || {
        loop {
            std::thread::sleep(TICK);
            match weak.upgrade() {
                Some(engine) => engine.increment_epoch(),
                None => break,
            }
        }
    })?;
    Ok(engine)
}
