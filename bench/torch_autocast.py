"""Runs a PyTorch twin (the shared torch_reference.py or one in bench/) under CPU autocast to
bfloat16: the comparison for the engine's UTKFACE_MATH=bf16 (bf16 operands, float32 sums and
weights, as autocast gives convolutions and linear layers). Usage:
    python3 bench/torch_autocast.py SCRIPT [the script's own flags]"""
import runpy, sys
import torch

if __name__ == '__main__':
    if len(sys.argv) < 2:
        sys.exit('usage: torch_autocast.py SCRIPT [flags]')
    script = sys.argv[1]
    sys.argv = [script] + sys.argv[2:]
    with torch.autocast('cpu', dtype=torch.bfloat16):
        runpy.run_path(script, run_name='__main__')
