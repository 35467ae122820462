"""The lab's panels hold the image settings: data set and its path, augmentation and its padding."""

import pytest

from conftest import text_of
from gengap_tui.tui.app import GengapApp
from gengap_tui.tui.widgets import field_id

pytestmark = pytest.mark.usefixtures("data_cache")

SMALL = ["data.n_train=300", "data.n_val=300", "model.width=32", "device=cpu", "optim.lr=0.01", "run.prewarm=false"]


@pytest.mark.slow  # over ~1.5 s (the marker's rule: README, Set up)
async def test_panels_show_augmentation_and_refuse_it_on_data_that_are_not_images(tmp_path):
    app = GengapApp("default", SMALL, runs_dir=tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        aug = app.query_one("#" + field_id("regularization.augment"))
        pad = app.query_one("#" + field_id("regularization.crop_pad"))
        assert aug.value == "none" and pad.value == "4"
        aug.value = "crop-flip"
        await pilot.pause()
        assert aug.has_class("-invalid")
        assert "not a set of images" in text_of(app, "#" + field_id("regularization.augment") + "-err")
        app.query_one("#" + field_id("data.dataset")).value = "digits"
        await pilot.pause()
        assert not aug.has_class("-invalid") and not app.errors
        assert app.cfg.regularization.augment == "crop-flip" and app.cfg.data.dataset == "digits"
        pad.value = "0"
        await pilot.pause()
        assert pad.has_class("-invalid") and "1 <= crop_pad" in text_of(app, "#" + field_id("regularization.crop_pad") + "-err")
        # a file set wants its path, in the same panel
        pad.value = "2"
        app.query_one("#" + field_id("data.dataset")).value = "cifar10"
        await pilot.pause()
        assert "data.path" in str(app.errors)
        app.query_one("#" + field_id("data.path")).value = str(tmp_path / "cifar-10-batches-py")
        await pilot.pause()
        assert not app.errors and app.cfg.data.path.endswith("cifar-10-batches-py")
