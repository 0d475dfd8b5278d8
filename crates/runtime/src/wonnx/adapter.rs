//! Finding a GPU adapter without panicking.

use crate::backend::Refusal;

/// The adapter the GPU engine would run on.
pub(crate) struct Adapter {
    /// e.g. `llvmpipe (LLVM 15.0.6, 256 bits) (Vulkan)`.
    pub description: String,
    /// A software rasteriser (lavapipe, SwiftShader, WARP): real, but slower than the CPU engine.
    pub software: bool,
    /// The API gave no name (WebGPU through wgpu 0.16): the caller's hint may say more.
    pub anonymous: bool,
}

/// Finds the adapter wonnx will pick and checks that a device opens on it.
///
/// wonnx 0.5.1 `expect`s both steps, so doing them first here is what keeps a machine without a GPU
/// from panicking. The selection mirrors wonnx's own (`WGPU_BACKEND` and `WGPU_ADAPTER_NAME` are
/// read by wgpu's helpers exactly as wonnx reads them) so the probe answers for the adapter wonnx uses.
pub(crate) async fn probe() -> Result<Adapter, Refusal> {
    let backends = wgpu_wonnx::util::backend_bits_from_env().unwrap_or(wgpu_wonnx::Backends::PRIMARY);
    let instance = wgpu_wonnx::Instance::new(wgpu_wonnx::InstanceDescriptor {
        backends,
        dx12_shader_compiler: wgpu_wonnx::Dx12Compiler::Fxc,
    });
    let adapter = wgpu_wonnx::util::initialize_adapter_from_env_or_default(&instance, backends, None)
        .await
        .ok_or(Refusal::NoAdapter)?;
    let info = adapter.get_info();
    adapter
        .request_device(&wgpu_wonnx::DeviceDescriptor::default(), None)
        .await
        .map_err(|e| Refusal::Device { message: e.to_string() })?;
    Ok(Adapter {
        description: format!("{} ({:?})", info.name, info.backend),
        software: info.device_type == wgpu_wonnx::DeviceType::Cpu,
        anonymous: info.name.is_empty(),
    })
}
