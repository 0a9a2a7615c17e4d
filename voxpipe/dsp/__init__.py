"""Signal-processing helpers shared by components (resampling, mel features, loudness).

Kept free of imports so that `import voxpipe.dsp.<module>` loads only what it needs.
"""
