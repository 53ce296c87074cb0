"""The bundled tiny Stable Diffusion: architecture, tokenizer, training and evaluation.

geovid ships its own small latent diffusion model (``geovid/assets/tiny-sd``), trained by this package on the
procedural world (:mod:`geovid.world`) and saved in the Stable-Diffusion folder format, so that the one
diffusers loader (:mod:`geovid.backbones.loader`) serves both SD2 and the bundled model.

* :mod:`geovid.model.architecture` -- component configs (bundled and test-sized) and builders;
* :mod:`geovid.model.tokenizer` -- a word-level CLIP BPE vocabulary built offline from the caption grammar;
* :mod:`geovid.model.data` -- batches of world scenes rendered on the fly;
* :mod:`geovid.model.train` -- ``train_vae``, ``train_unet``, ``train_all``;
* :mod:`geovid.model.evaluate` -- the three quality numbers of docs/model.md on held-out scenes.

Heavy imports (torch, diffusers, transformers) happen in those modules, never here.
"""
