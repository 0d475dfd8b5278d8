//! Opening an adapter and a device, without panicking when there is none.

use crate::error::{Error, Result};

/// The adapter a [`Gpu`] runs on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdapterInfo {
    /// e.g. `llvmpipe (LLVM 15.0.6, 256 bits) (Vulkan)`; empty when the API gives no name
    /// (browsers may hide it).
    pub description: String,
    /// A software rasteriser (lavapipe, SwiftShader, WARP): real, but slower than the CPU engine.
    pub software: bool,
}

/// A device and its queue: what every compiled [`crate::Program`] runs on.
#[derive(Debug, Clone)]
pub struct Gpu {
    pub(crate) device: wgpu::Device,
    pub(crate) queue: wgpu::Queue,
    info: AdapterInfo,
}

impl Gpu {
    /// Opens the best adapter: a discrete GPU before an integrated one, hardware before software.
    ///
    /// `WGPU_BACKEND` narrows the backends, read by wgpu itself; this is the one environment
    /// read in the GPU engine, and it is wgpu's.
    pub async fn open() -> Result<Gpu> {
        let backends = wgpu::Backends::PRIMARY.with_env();
        let mut descriptor = wgpu::InstanceDescriptor::new_without_display_handle();
        descriptor.backends = backends;
        let instance = wgpu::Instance::new(descriptor);
        let mut adapters = instance.enumerate_adapters(backends).await;
        adapters.sort_by_key(|a| rank(a.get_info().device_type));
        let adapter = adapters.into_iter().next().ok_or(Error::NoAdapter)?;
        let info = adapter.get_info();
        let available = adapter.limits();
        // WebGPU's defaults, except the buffer sizes: as large as the adapter allows.
        let limits = wgpu::Limits {
            max_storage_buffer_binding_size: available.max_storage_buffer_binding_size,
            max_buffer_size: available.max_buffer_size,
            ..wgpu::Limits::default()
        };
        let (device, queue) = adapter
            .request_device(&wgpu::DeviceDescriptor {
                label: Some("sextant"),
                required_limits: limits,
                ..Default::default()
            })
            .await
            .map_err(|e| Error::Device(e.to_string()))?;
        let info = AdapterInfo {
            description: match info.name.is_empty() {
                true => String::new(),
                false => format!("{} ({:?})", info.name, info.backend),
            },
            software: info.device_type == wgpu::DeviceType::Cpu,
        };
        Ok(Gpu { device, queue, info })
    }

    pub fn adapter(&self) -> &AdapterInfo {
        &self.info
    }

    /// The largest tensor, in bytes, one kernel can bind.
    pub(crate) fn max_binding(&self) -> u64 {
        self.device.limits().max_storage_buffer_binding_size
    }
}

fn rank(kind: wgpu::DeviceType) -> u8 {
    match kind {
        wgpu::DeviceType::DiscreteGpu => 0,
        wgpu::DeviceType::IntegratedGpu => 1,
        wgpu::DeviceType::VirtualGpu => 2,
        wgpu::DeviceType::Other => 3,
        wgpu::DeviceType::Cpu => 4,
    }
}
