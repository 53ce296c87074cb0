"""The procedural scene world: CLEVR-like scenes (:mod:`.scene`), a fast renderer (:mod:`.render`), clips with
known motion (:mod:`.clips`), a plausibility checker (:mod:`.checker`, measured by :mod:`.validate`) and
dataset export (:mod:`.dataset`).

Submodules are imported explicitly (``from geovid.world.render import render_batch``) so that importing the
package stays cheap. See docs/world.md.
"""
