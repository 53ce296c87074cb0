"""The procedural scene world: CLEVR-like scenes (:mod:`.scene`), a fast renderer (:mod:`.render`), clips with
known motion (:mod:`.clips`), a plausibility checker (:mod:`.checker`, measured by :mod:`.validate`), an
object/ghost count independent of any model (:mod:`.objects`, docs/method.md §8.6) and dataset export
(:mod:`.dataset`).

Submodules are imported explicitly (``from geovid.world.render import render_batch``) so that importing the
package stays cheap. See docs/world.md.
"""

from typing import Any

#: Exported lazily (``from geovid.world import count_objects``) so that importing the package stays cheap.
_OBJECTS = ("count_objects", "clean_rate", "frame_is_clean", "scene_colours", "CountThresholds", "ObjectCount")


def __getattr__(name: str) -> Any:
    if name in _OBJECTS:
        from geovid.world import objects

        return getattr(objects, name)
    raise AttributeError(f"module 'geovid.world' has no attribute {name!r}")


__all__ = list(_OBJECTS)
