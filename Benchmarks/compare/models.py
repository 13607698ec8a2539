"""The authors' five networks as eager PyTorch modules, written here from
../shared/LRUNET-SPEC.md and ../shared/BASELINES-SPEC.md (our own code), with their
state-dict names, so a safetensors checkpoint (theirs or ours) loads with strict=True.

    net = build(meta)                      # meta: the checkpoint's metadata
    net.load_state_dict(tensors, strict=True)
"""
import torch
from torch import nn
import torch.nn.functional as F


def shuffle(x, g):
    """ShuffleNet's channel shuffle: out[k*g + j] = in[j*(C/g) + k]."""
    n, c, h, w = x.shape
    return x.view(n, g, c // g, h, w).transpose(1, 2).reshape(n, c, h, w)


class LruBlock(nn.Module):
    def __init__(self, planes, n_reuse):
        super().__init__()
        self.n = n_reuse
        self.dw = nn.Conv2d(planes, 2 * planes, 3, padding=1, groups=planes, bias=False)
        self.pw = nn.Conv2d(2 * planes, planes, 1, groups=8, bias=False)
        self.dw_bn_list = nn.ModuleList([nn.BatchNorm2d(2 * planes) for _ in range(n_reuse)])
        self.pw_bn_list = nn.ModuleList([nn.BatchNorm2d(planes) for _ in range(n_reuse)])

    def forward(self, x):
        res = x
        for i in range(self.n):
            y = F.relu(self.pw_bn_list[i](self.pw(self.dw_bn_list[i](self.dw(res)))) + res)
            if i != self.n - 1:      # LruNet's shuffle: swap the halves, then a 2-group shuffle
                c = y.shape[1]
                y = shuffle(torch.cat([y[:, c // 2:], y[:, :c // 2]], 1), 2)
            res = y
        return res


class LruNet(nn.Module):
    def __init__(self, classes, width, n_reuse, in_ch):
        super().__init__()
        cfg = [c * width for c in (64, 128, 256, 512, 256)]
        self.width = width
        self.features = nn.Sequential(nn.Conv2d(in_ch, 64, 3, 2, 1, bias=False), nn.BatchNorm2d(64), nn.ReLU())
        self.stage1, self.stage2, self.stage3, self.stage4 = (LruBlock(c, n_reuse) for c in cfg[:4])
        self.classifier = nn.Sequential(nn.Conv2d(cfg[3], cfg[4], 1, groups=8, bias=False), nn.BatchNorm2d(cfg[4]), nn.ReLU(),
                                        nn.Dropout(0.5), nn.Conv2d(cfg[4], classes, 1), nn.ReLU(), nn.AvgPool2d(2, 1))

    def forward(self, x):
        pool = lambda t: F.max_pool2d(t, 3, 2, 1)
        cat = lambda t: torch.cat([t, t], 1)
        x = self.features(x)
        if self.width == 2:
            x = cat(x)
        x = cat(pool(self.stage1(x)))
        x = cat(pool(self.stage2(x)))
        x = cat(self.stage3(x))
        x = pool(self.stage4(x))
        return self.classifier(x).flatten(1)


class MobileBlock(nn.Module):
    def __init__(self, i, o, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(i, i, 3, stride, 1, groups=i, bias=False)
        self.bn1 = nn.BatchNorm2d(i)
        self.conv2 = nn.Conv2d(i, o, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(o)

    def forward(self, x):
        return F.relu(self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x))))))


class MobileNet(nn.Module):
    def __init__(self, classes, w, in_ch):
        super().__init__()
        c = int(32 * w)
        layers = [nn.Sequential(nn.Conv2d(in_ch, c, 3, 1, 1, bias=False), nn.BatchNorm2d(c), nn.ReLU())]
        for ch, n, s in [(64, 1, 2), (128, 2, 2), (256, 2, 1), (512, 6, 2), (1024, 2, 1)]:
            for i in range(n):
                layers.append(MobileBlock(c, int(ch * w), s if i == 0 else 1))
                c = int(ch * w)
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(c, classes))

    def forward(self, x):
        return self.classifier(F.adaptive_avg_pool2d(self.features(x), 1).flatten(1))


class InvertedResidual(nn.Module):
    def __init__(self, i, o, stride, t):
        super().__init__()
        h = i * t
        self.residual = stride == 1 and i == o
        ops = []
        if t != 1:
            ops += [nn.Conv2d(i, h, 1, bias=False), nn.BatchNorm2d(h), nn.ReLU6()]
        ops += [nn.Conv2d(h, h, 3, stride, 1, groups=h, bias=False), nn.BatchNorm2d(h), nn.ReLU6(),
                nn.Conv2d(h, o, 1, bias=False), nn.BatchNorm2d(o)]
        self.conv = nn.Sequential(*ops)

    def forward(self, x):
        return x + self.conv(x) if self.residual else self.conv(x)


class MobileNetV2(nn.Module):
    def __init__(self, classes, w, in_ch):
        super().__init__()
        c = int(32 * w)
        layers = [nn.Sequential(nn.Conv2d(in_ch, c, 3, 1, 1, bias=False), nn.BatchNorm2d(c), nn.ReLU6())]
        for t, ch, n, s in [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 1), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]:
            for i in range(n):
                layers.append(InvertedResidual(c, int(ch * w), s if i == 0 else 1, t))
                c = int(ch * w)
        last = int(1280 * w) if w > 1 else 1280
        layers.append(nn.Sequential(nn.Conv2d(c, last, 1, bias=False), nn.BatchNorm2d(last), nn.ReLU6()))
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(last, classes))

    def forward(self, x):
        return self.classifier(F.adaptive_avg_pool2d(self.features(x), 1).flatten(1))


class ShuffleBottleneck(nn.Module):
    def __init__(self, i, o, stride, g):
        super().__init__()
        mid = (o // (4 * g)) * g
        self.stride, self.g = stride, g
        self.conv1 = nn.Conv2d(i, mid, 1, groups=g, bias=False)
        self.bn1 = nn.BatchNorm2d(mid)
        self.conv2 = nn.Conv2d(mid, mid, 3, stride, 1, groups=mid, bias=False)
        self.bn2 = nn.BatchNorm2d(mid)
        self.conv3 = nn.Conv2d(mid, o, 1, groups=g, bias=False)
        self.bn3 = nn.BatchNorm2d(o)

    def forward(self, x):
        y = shuffle(F.relu(self.bn1(self.conv1(x))), self.g)
        y = F.relu(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(y))
        if self.stride == 2:
            return F.relu(torch.cat([y, F.avg_pool2d(x, 3, 2, 1)], 1))
        return F.relu(y + x)


class ShuffleNet(nn.Module):
    def __init__(self, classes, w, g, in_ch):
        super().__init__()
        widths = [int(c * w) for c in ((24, 384, 768, 1536) if g == 8 else (24, 240, 480, 960))]
        self.conv1 = nn.Conv2d(in_ch, widths[0], 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        c = widths[0]
        for k, n in enumerate((4, 8, 4)):
            blocks = []
            for i in range(n):
                out = widths[k + 1]
                blocks.append(ShuffleBottleneck(c, out - c if i == 0 else out, 2 if i == 0 else 1, g))
                c = out
            setattr(self, f"layer{k + 1}", nn.Sequential(*blocks))
        self.linear = nn.Linear(c, classes)

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.linear(F.adaptive_avg_pool2d(x, 1).flatten(1))


class DownBlock(nn.Module):
    def __init__(self, i, o):
        super().__init__()
        m = o // 2
        self.conv1, self.bn1 = nn.Conv2d(i, i, 3, 2, 1, groups=i, bias=False), nn.BatchNorm2d(i)
        self.conv2, self.bn2 = nn.Conv2d(i, m, 1, bias=False), nn.BatchNorm2d(m)
        self.conv3, self.bn3 = nn.Conv2d(i, m, 1, bias=False), nn.BatchNorm2d(m)
        self.conv4, self.bn4 = nn.Conv2d(m, m, 3, 2, 1, groups=m, bias=False), nn.BatchNorm2d(m)
        self.conv5, self.bn5 = nn.Conv2d(m, m, 1, bias=False), nn.BatchNorm2d(m)

    def forward(self, x):
        left = F.relu(self.bn2(self.conv2(self.bn1(self.conv1(x)))))
        right = F.relu(self.bn3(self.conv3(x)))
        right = F.relu(self.bn5(self.conv5(self.bn4(self.conv4(right)))))
        return shuffle(torch.cat([left, right], 1), 2)


class BasicBlock(nn.Module):
    def __init__(self, c):
        super().__init__()
        h = c // 2
        self.conv1, self.bn1 = nn.Conv2d(h, h, 1, bias=False), nn.BatchNorm2d(h)
        self.conv2, self.bn2 = nn.Conv2d(h, h, 3, 1, 1, groups=h, bias=False), nn.BatchNorm2d(h)
        self.conv3, self.bn3 = nn.Conv2d(h, h, 1, bias=False), nn.BatchNorm2d(h)

    def forward(self, x):
        c = x.shape[1] // 2
        y = F.relu(self.bn1(self.conv1(x[:, c:])))
        y = F.relu(self.bn3(self.conv3(self.bn2(self.conv2(y)))))
        return shuffle(torch.cat([x[:, :c], y], 1), 2)


class ShuffleNetV2(nn.Module):
    WIDTHS = {0.25: (32, 64, 128, 1024), 0.5: (48, 96, 192, 1024), 0.75: (60, 120, 240, 1024), 1.0: (116, 232, 464, 1024),
              1.5: (176, 352, 704, 1024), 2.0: (224, 488, 976, 2048)}

    def __init__(self, classes, w, in_ch):
        super().__init__()
        widths = self.WIDTHS[w]
        self.conv1, self.bn1 = nn.Conv2d(in_ch, 24, 3, 1, 1, bias=False), nn.BatchNorm2d(24)
        c = 24
        for k, n in enumerate((3, 7, 3)):
            setattr(self, f"layer{k + 1}", nn.Sequential(DownBlock(c, widths[k]), *[BasicBlock(widths[k]) for _ in range(n)]))
            c = widths[k]
        self.conv2, self.bn2 = nn.Conv2d(c, widths[3], 1, bias=False), nn.BatchNorm2d(widths[3])
        self.linear = nn.Linear(widths[3], classes)

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        x = F.relu(self.bn2(self.conv2(x)))
        return self.linear(F.adaptive_avg_pool2d(x, 1).flatten(1))


def build(meta):
    """The network a checkpoint's metadata describes."""
    arch, classes, in_ch = meta["arch"], int(meta["num_classes"]), int(meta["in_channels"])
    w = float(meta["width_mult"])
    if arch == "lrunet":
        return LruNet(classes, int(w), int(meta["layer_reuse"]), in_ch)
    if arch == "mobilenet":
        return MobileNet(classes, w, in_ch)
    if arch == "mobilenetv2":
        return MobileNetV2(classes, w, in_ch)
    if arch == "shufflenet":
        return ShuffleNet(classes, w, int(meta.get("groups", "3")), in_ch)
    if arch == "shufflenetv2":
        return ShuffleNetV2(classes, w, in_ch)
    raise SystemExit(f"unknown arch {arch}")
