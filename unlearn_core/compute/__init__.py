"""Where and how arithmetic runs: the device (`device`), the precision of forward passes
(`precision`) and several processes through Hugging Face Accelerate (`distributed`)."""
