// What the browser test drivers share: their environment, and how Chromium is started (WebGPU
// through SwiftShader, so the GPU engine runs in the page on machines without a GPU).

/** The environment variable `name`; throws when it is not set. */
export const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
};

export const chromiumArgs = ["--no-sandbox", "--enable-unsafe-webgpu", "--enable-features=Vulkan",
  "--use-vulkan=swiftshader", "--use-webgpu-adapter=swiftshader", "--disable-vulkan-surface"];
