"""reid_ext models: importing this registers every backbone, head, loss and meta-arch."""
from . import losses, meta_arch  # noqa: F401
# -- method modules (one import line per method package/module) --
from . import hashing  # noqa: F401,E402  (SSR: SSRHashing, AAB, hash heads)
from . import nformer  # noqa: F401,E402  (issue 6: NFormer)
from . import backbones  # noqa: F401,E402  (C2F: build_resnet_c2f_backbone)
from . import heads  # noqa: F401,E402  (ReidEmbeddingHead with CLS_ENABLE; SFTHead)
from . import combined  # noqa: F401,E402  (CombinedReID: all five methods, projects/Combined)
