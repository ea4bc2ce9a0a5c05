"""Export: TorchTitan checkpoints -> Hugging Face folders and GGUF files, llama.cpp quantization and
inference, the quant report (docs/inference.md). Commands in datakit_titan.export.cli."""
