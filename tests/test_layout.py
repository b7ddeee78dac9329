"""The package layout: the core never imports a case study, one label constant, ``__all__`` everywhere."""

import ast
import importlib
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "siamese_tf"
# Entry points may wire the studies in; every other core module must stand without them.
ENTRY_POINTS = {"__init__.py", "__main__.py", "cli.py"}
CORE_MODULES = sorted(path for path in PACKAGE.glob("*.py") if path.name not in ENTRY_POINTS)
STUDY_MODULES = sorted((PACKAGE / "studies").rglob("*.py"))


def imported_modules(path):
    """Every module name an ``import`` anywhere in the file (top level or inside functions) names."""
    names = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.append(node.module)
            names += [f"{node.module}.{alias.name}" for alias in node.names]
    return names


def module_name(path):
    relative = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = relative.parts[:-1] if relative.name == "__init__" else relative.parts
    return ".".join(parts)


def test_the_core_list_is_not_empty():
    assert len(CORE_MODULES) > 15 and len(STUDY_MODULES) >= 15


@pytest.mark.parametrize("path", CORE_MODULES, ids=lambda path: path.name)
def test_core_modules_never_import_a_study(path):
    offending = [name for name in imported_modules(path) if name.startswith("siamese_tf.studies")]
    assert not offending, f"{path.name} imports {offending}; imports go studies -> core only"


def test_the_import_check_catches_a_nested_import(tmp_path):
    module = tmp_path / "bad.py"
    module.write_text("def f():\n    from siamese_tf import studies\n    return studies\n")
    assert "siamese_tf.studies" in imported_modules(module)


def test_studies_do_not_import_each_other():
    for path in STUDY_MODULES:
        study = path.relative_to(PACKAGE / "studies").parts[0]
        if study == "__init__.py":
            continue
        others = [name for name in imported_modules(path)
                  if name.startswith("siamese_tf.studies.") and name.split(".")[2] != study]
        assert not others, f"{path} imports another study: {others}"


def test_the_label_constants_are_defined_once():
    definitions = []
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Assign):
                for target in node.targets:
                    if isinstance(target, ast.Name) and target.id in ("SAME_LABEL", "DIFFERENT_LABEL"):
                        definitions.append(f"{path.relative_to(PACKAGE)}:{target.id}")
    assert sorted(definitions) == ["labels.py:DIFFERENT_LABEL", "labels.py:SAME_LABEL"]


PUBLIC_MODULES = [path for path in CORE_MODULES + STUDY_MODULES if path.name != "__main__.py"]


@pytest.mark.parametrize("path", PUBLIC_MODULES, ids=module_name)
def test_every_public_module_declares_all_and_it_is_importable(path):
    module = importlib.import_module(module_name(path))
    assert hasattr(module, "__all__"), f"{module.__name__} has no __all__"
    missing = [name for name in module.__all__ if not hasattr(module, name)]
    assert not missing, f"{module.__name__}.__all__ names what it does not define: {missing}"
    assert len(set(module.__all__)) == len(module.__all__), f"{module.__name__}.__all__ repeats a name"


def test_no_private_name_crosses_a_module():
    crossings = []
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("siamese_tf"):
                crossings += [f"{path.relative_to(PACKAGE)}: {node.module}.{alias.name}"
                              for alias in node.names if alias.name.startswith("_")]
    assert not crossings, crossings


@pytest.mark.parametrize("name, input_shape", [("deepsign", (48, 72, 1)), ("siamese_ccr_15", (44, 44, 1)),
                                               ("mask_guided_sister", (20, 20, 3)), ("small_cnn", (32, 32, 1))])
def test_study_networks_are_built_by_name(name, input_shape):
    from siamese_tf.models import build_siamese_model

    model = build_siamese_model(name, "euclidean", input_shape=input_shape)
    assert model.embedding.input_shape[1:] == input_shape


def test_an_unknown_network_name_lists_the_registered_ones():
    from siamese_tf.embeddings import get_embedding

    with pytest.raises(ValueError, match=r"Unknown embedding 'nope'.*deepsign"):
        get_embedding("nope", (32, 32, 1))


def test_registering_a_taken_name_with_another_builder_fails():
    from siamese_tf.embeddings import register_embedding

    def another_small_cnn(input_shape, **kwargs):
        raise AssertionError("never built")

    with pytest.raises(ValueError, match="small_cnn"):
        register_embedding("small_cnn", another_small_cnn)


# Import name -> distribution name, for the packages whose two names differ.
DISTRIBUTION_OF = {"cv2": "opencv-python-headless", "sklearn": "scikit-learn", "skimage": "scikit-image",
                   "faiss": "faiss-cpu", "PIL": "pillow"}


def test_pyproject_declares_every_third_party_package_the_code_imports():
    import sys

    import tomllib

    pyproject = tomllib.loads((PACKAGE.parent / "pyproject.toml").read_text())
    declared = {requirement.split(";")[0].split("[")[0].split(">")[0].split("<")[0].split("=")[0].strip().lower()
                for requirement in pyproject["project"]["dependencies"]}
    imported = set()
    for path in PACKAGE.rglob("*.py"):
        for name in imported_modules(path):
            top = name.split(".")[0]
            if top != "siamese_tf" and top not in sys.stdlib_module_names:
                imported.add(top)
    assert imported, "no third-party import found: the scan is broken"
    missing = sorted(top for top in imported if DISTRIBUTION_OF.get(top, top).lower() not in declared)
    assert not missing, f"pyproject.toml [project] dependencies lack {missing}"


def _unannotated(module):
    """``module.name`` of every public function or method whose parameters or return lack a type hint."""
    import inspect

    found = []
    for name in module.__all__:
        value = getattr(module, name)
        functions = []
        if inspect.isfunction(value) and value.__module__ == module.__name__:
            functions.append((name, value))
        elif inspect.isclass(value) and value.__module__ == module.__name__:
            for attribute, member in vars(value).items():
                if attribute.startswith("_") and attribute != "__init__":
                    continue
                member = member.fget if isinstance(member, property) else member
                member = member.__func__ if isinstance(member, (staticmethod, classmethod)) else member
                if inspect.isfunction(member):
                    functions.append((f"{name}.{attribute}", member))
        for qualified, function in functions:
            signature = inspect.signature(function)
            bare = [parameter.name for parameter in signature.parameters.values()
                    if parameter.name not in ("self", "cls") and parameter.annotation is inspect.Parameter.empty]
            if bare or signature.return_annotation is inspect.Signature.empty:
                found.append(f"{module.__name__}.{qualified}")
    return found


@pytest.mark.parametrize("path", [path for path in PUBLIC_MODULES if path.name not in ("__init__.py", "cli.py")],
                         ids=module_name)
def test_the_public_api_has_type_hints(path):
    missing = _unannotated(importlib.import_module(module_name(path)))
    assert not missing, f"public callables without type hints: {missing}"
