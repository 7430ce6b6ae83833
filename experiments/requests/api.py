"""The few calls of Label Studio's REST API the loop needs (token auth, standard library only), and
``python -m experiments.requests label-studio``: a project with segal's interface, a Local Files storage for the
images and a round's tasks imported."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any


class LabelStudio:
    """The few calls of Label Studio's REST API the loop needs, with the standard library only."""

    def __init__(self, url: str, token: str, timeout: float = 60.0):
        self.url, self.timeout = url.rstrip("/"), timeout
        self.auth: str | None = None
        if token.count(".") == 2:  # a personal access token (a JWT refresh token): exchanged for an access token
            self.auth = f"Bearer {self.call('POST', '/api/token/refresh', {'refresh': token})['access']}"
        else:  # a legacy token
            self.auth = f"Token {token}"

    def call(self, method: str, path: str, body: Any = None, raw: bool = False) -> Any:
        data = None if body is None else json.dumps(body).encode()
        headers = {"Content-Type": "application/json", **({"Authorization": self.auth} if self.auth else {})}
        request = urllib.request.Request(f"{self.url}{path}", data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                payload = response.read()
        except urllib.error.HTTPError as error:
            raise RuntimeError(f"Label Studio {method} {path}: HTTP {error.code} {error.read()[:300]!r}") from None
        return payload if raw else (json.loads(payload) if payload else None)

    def create_project(self, title: str, label_config: str) -> dict[str, Any]:
        return self.call("POST", "/api/projects", {"title": title, "label_config": label_config})

    def add_local_storage(self, project: int, folder: Path) -> dict[str, Any]:
        """A Local Files source storage for ``folder`` (not synced: the tasks are imported with their URLs)."""
        return self.call(
            "POST",
            "/api/storages/localfiles",
            {"project": project, "path": str(folder), "title": "segal images", "use_blob_urls": False},
        )

    def import_tasks(self, project: int, tasks: list[dict[str, Any]]) -> dict[str, Any]:
        return self.call("POST", f"/api/projects/{project}/import", tasks)

    def tasks(self, project: int) -> list[dict[str, Any]]:
        return self.call("GET", f"/api/tasks?project={project}&page_size=1000&fields=all")["tasks"]

    def annotate(self, task: int, result: list[dict[str, Any]]) -> dict[str, Any]:
        return self.call("POST", f"/api/tasks/{task}/annotations", {"result": result})

    def export(self, project: int, export_type: str = "JSON") -> bytes:
        """``JSON`` (the tasks with annotations) or ``BRUSH_TO_PNG`` (a zip of masks)."""
        return self.call("GET", f"/api/projects/{project}/export?exportType={export_type}", raw=True)


def setup_project(client: LabelStudio, requests_dir: Path, title: str) -> dict[str, Any]:
    """Create a project with segal's labelling interface, a Local Files storage for the images and import the
    tasks of one segal-request output folder; returns the project (with ``tasks_imported``)."""
    requests_dir = Path(requests_dir)
    settings = json.loads((requests_dir / "requests.json").read_text())["settings"]
    project = client.create_project(title, (requests_dir / "label_studio" / "label_config.xml").read_text())
    client.add_local_storage(project["id"], Path(settings["images"]))
    tasks = json.loads((requests_dir / "label_studio" / "tasks.json").read_text())
    imported = client.import_tasks(project["id"], tasks)
    return {**project, "tasks_imported": imported.get("task_count", len(tasks))}


def setup_main(argv: list[str] | None = None) -> int:
    """``python -m experiments.requests label-studio``: create the project, storage and tasks of a request round."""
    import argparse
    import os

    parser = argparse.ArgumentParser(
        prog="python -m experiments.requests label-studio",
        description="create a Label Studio project with segal's labelling interface, a Local Files storage for the images, "
        "and import the tasks of one segal-request round",
    )
    parser.add_argument("requests_dir", type=Path, help="the --out folder of segal-request")
    parser.add_argument("--url", default="http://localhost:8080", help="Label Studio's address")
    parser.add_argument(
        "--token",
        default=os.environ.get("LABEL_STUDIO_API_KEY"),
        help="an access token (Account & Settings; default $LABEL_STUDIO_API_KEY)",
    )
    parser.add_argument("--title", default="segal requests")
    args = parser.parse_args(argv)
    if not args.token:
        parser.error("give --token or set LABEL_STUDIO_API_KEY")
    project = setup_project(LabelStudio(args.url, args.token), args.requests_dir, args.title)
    print(f"project {project['id']} with {project['tasks_imported']} tasks: {args.url}/projects/{project['id']}/data")
    return 0
