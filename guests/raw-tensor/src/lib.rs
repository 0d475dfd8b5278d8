//! The thinnest pipeline: raw tensor bytes in, raw output bytes out, through `wasi:nn`. It measures
//! what the sandbox costs on top of inference (`cargo xtask bench-edge`) and serves clients that
//! already hold tensors.
//!
//! `POST /…?graph=NAME&input=NAME&dims=1,64&output=NAME` with the FP32 values, little-endian, as
//! the body. The answer is the output's FP32 bytes, its shape in `x-tensor-dims`.

use sextant_guest::{Error, Handler, Request, Response, nn};

struct RawTensor;

impl Handler for RawTensor {
    fn handle(request: Request) -> Result<Response, Error> {
        let param =
            |key: &str| request.query_param(key).ok_or_else(|| Error::bad_request(format!("no {key}= in the query")));
        let dims = param("dims")?
            .split(',')
            .map(|d| d.parse::<u32>().map_err(|_| Error::bad_request(format!("dims: {d:?} is not a whole number"))))
            .collect::<Result<Vec<u32>, Error>>()?;
        let (graph, input_name, output_name) =
            (param("graph")?.to_owned(), param("input")?.to_owned(), param("output")?.to_owned());
        let input = nn::Tensor { dims, ty: nn::TensorType::Fp32, data: request.body };
        let outputs = nn::Graph::load(&graph)?.run(&[(input_name.as_str(), input)])?;
        let output = nn::output(&outputs, &output_name)?;
        let dims: Vec<String> = output.dims.iter().map(u32::to_string).collect();
        Ok(Response {
            status: 200,
            headers: vec![
                ("content-type".to_owned(), b"application/octet-stream".to_vec()),
                ("x-tensor-dims".to_owned(), dims.join(",").into_bytes()),
            ],
            body: output.data.clone(),
        })
    }
}

sextant_guest::export!(RawTensor);
