"""The web dashboard: static pages the app serves, which read the same ``/v1`` API as anyone.

The page holds no data of its own and the server renders nothing into it:
its ES modules call ``/v1`` with the API key the user pastes (kept in
``sessionStorage``, sent only as ``Authorization``), so an agronomist, a
platform or an admin sees exactly what their key may see through the API.

Served from an allow-list built once from the package's ``static/`` folder
(no path from a request ever reaches the file system), from memory, gzipped
when the client takes it, with an ``ETag`` to revalidate (``no-cache``: the
file names carry no version) and a Content-Security-Policy that admits only
this origin's scripts and styles — no inline script or style runs, and no
form can navigate anywhere (the key form must never turn the key into a URL).

Public face: :data:`router` (``GET /`` → ``/dashboard/``, the files under
``/dashboard/``) and :data:`CONTENT_SECURITY_POLICY`.
"""

from __future__ import annotations

from api.dashboard._static import CONTENT_SECURITY_POLICY, STATIC_DIR, DashboardFiles, router

__all__ = ["CONTENT_SECURITY_POLICY", "STATIC_DIR", "DashboardFiles", "router"]
