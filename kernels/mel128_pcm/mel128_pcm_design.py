#!/usr/bin/python3
"""mel128_pcm on npu1_1col: the mel_pcm design (kernels/mel_pcm/
mel_pcm_design.py, pcm_design) with 128 bands: 400-sample PCM windows read
by the shim DMA at a 160-sample stride in, 128 int16 Q8 log10 mel energies
(256 B) out per item; the core calls mel128_pcm_kernel_simple.
Usage: mel128_pcm_design.py --n 16 [-o f]
"""
import os
import sys

_here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(_here, "..", "tools", "txn_design"))
sys.path.insert(0, os.path.join(_here, "..", "mel_pcm"))
import aie_design  # noqa: E402
import mel_pcm_design  # noqa: E402

DESIGN, CORE = mel_pcm_design.pcm_design("mel128_pcm", 128)

if __name__ == "__main__":
    aie_design.main(DESIGN, CORE, sys.argv[1:])
