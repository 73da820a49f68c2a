"""A PyTorch multilayer perceptron behind the scikit-learn classifier API.

It sits in the same `Pipeline` as every other candidate (preprocessing, then the estimator), so it
is tuned, saved (skops/pickle), registered and served the same way. The learned weights live in
`state_` as plain numpy arrays, never as torch objects, so a saved model loads without pickle hooks
and predicting needs torch only when called. Training holds out a stratified validation fold and
stops when its loss has not improved for `patience` epochs, keeping the best epoch's weights.

The import path `retrainer.models.mlp.TorchMLPClassifier` is baked into every saved model: keep it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin

if TYPE_CHECKING:
    import torch


class TorchMLPClassifier(ClassifierMixin, BaseEstimator):
    """Binary classifier: `n_layers` ReLU layers of `hidden_size` units with dropout, trained with Adam."""

    def __init__(
        self,
        hidden_size: int = 64,
        n_layers: int = 2,
        dropout: float = 0.1,
        learning_rate: float = 1e-3,
        weight_decay: float = 0.0,
        batch_size: int = 128,
        max_epochs: int = 100,
        patience: int = 10,
        validation_fraction: float = 0.15,
        class_weight: str | None = None,
        random_state: int = 0,
        n_jobs: int = 1,
        device: str = "auto",
    ) -> None:
        self.hidden_size = hidden_size
        self.n_layers = n_layers
        self.dropout = dropout
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.patience = patience
        self.validation_fraction = validation_fraction
        self.class_weight = class_weight
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.device = device

    # ------------------------------------------------------------------ sklearn API
    def fit(self, X: Any, y: Any) -> TorchMLPClassifier:  # noqa: N803
        import torch
        from sklearn.model_selection import train_test_split

        features = _dense(X)
        self.classes_, labels = np.unique(np.asarray(y), return_inverse=True)
        if len(self.classes_) != 2:
            raise ValueError(f"TorchMLPClassifier is binary: got {len(self.classes_)} classes")
        if self.class_weight not in (None, "balanced"):
            raise ValueError(f"class_weight must be None or 'balanced', got {self.class_weight!r}")
        self.n_features_in_ = features.shape[1]
        labels = labels.astype(np.float32)
        fit_x, val_x, fit_y, val_y = train_test_split(
            features, labels, test_size=self.validation_fraction, stratify=labels, random_state=self.random_state
        )
        device = self._device()
        with _threads(self.n_jobs):
            torch.manual_seed(self.random_state)
            net = _network(self.n_features_in_, self.hidden_size, self.n_layers, self.dropout).to(device)
            positives = float(fit_y.sum())
            pos_weight = (len(fit_y) - positives) / max(positives, 1.0) if self.class_weight == "balanced" else 1.0
            loss_fn = torch.nn.BCEWithLogitsLoss(pos_weight=torch.tensor(pos_weight, device=device))
            val_loss_fn = torch.nn.BCEWithLogitsLoss(pos_weight=torch.tensor(pos_weight, device=device))
            optimizer = _Adam(list(net.parameters()), self.learning_rate, self.weight_decay)
            fit_xt, fit_yt = torch.from_numpy(fit_x).to(device), torch.from_numpy(fit_y).to(device)
            val_xt, val_yt = torch.from_numpy(val_x).to(device), torch.from_numpy(val_y).to(device)
            order = np.random.default_rng(self.random_state)
            best_loss, best_epoch, best_state = float("inf"), 0, _numpy_state(net)
            self.val_losses_: list[float] = []
            for epoch in range(self.max_epochs):
                net.train()
                for batch in np.array_split(order.permutation(len(fit_y)), max(1, len(fit_y) // self.batch_size)):
                    index = torch.from_numpy(batch).to(device)
                    optimizer.zero_grad()
                    loss_fn(net(fit_xt[index]).squeeze(1), fit_yt[index]).backward()
                    optimizer.step()
                net.eval()
                with torch.no_grad():
                    val_loss = float(val_loss_fn(net(val_xt).squeeze(1), val_yt))
                self.val_losses_.append(round(val_loss, 6))
                if val_loss < best_loss - 1e-5:
                    best_loss, best_epoch, best_state = val_loss, epoch, _numpy_state(net)
                elif epoch - best_epoch >= self.patience:
                    break
        self.state_ = best_state
        self.best_epoch_ = best_epoch + 1
        self.n_epochs_ = len(self.val_losses_)
        return self

    def predict_proba(self, X: Any) -> np.ndarray:  # noqa: N803
        import torch

        if not hasattr(self, "state_"):
            from sklearn.exceptions import NotFittedError

            raise NotFittedError("TorchMLPClassifier is not fitted yet: call fit first")
        features = _dense(X)
        with _threads(self.n_jobs), torch.no_grad():
            net = _network(self.n_features_in_, self.hidden_size, self.n_layers, self.dropout)
            net.load_state_dict({name: torch.from_numpy(value) for name, value in self.state_.items()})
            net.eval()
            positive = torch.sigmoid(net(torch.from_numpy(features)).squeeze(1)).numpy().astype(np.float64)
        return np.column_stack([1.0 - positive, positive])

    def predict(self, X: Any) -> np.ndarray:  # noqa: N803
        return self.classes_[(self.predict_proba(X)[:, 1] >= 0.5).astype(int)]

    def _device(self) -> str:
        import torch

        if self.device == "auto":
            return "cuda" if torch.cuda.is_available() else "cpu"
        return self.device


def _dense(X: Any) -> np.ndarray:  # noqa: N803
    """float32 rows: the preprocessing may hand over a DataFrame or a sparse matrix."""
    if hasattr(X, "toarray"):
        X = X.toarray()  # noqa: N806
    return np.ascontiguousarray(np.asarray(X, dtype=np.float32))


def _network(n_features: int, hidden_size: int, n_layers: int, dropout: float) -> torch.nn.Sequential:
    import torch

    layers: list[torch.nn.Module] = []
    width = n_features
    for _ in range(n_layers):
        layers += [torch.nn.Linear(width, hidden_size), torch.nn.ReLU(), torch.nn.Dropout(dropout)]
        width = hidden_size
    layers.append(torch.nn.Linear(width, 1))
    return torch.nn.Sequential(*layers)


def _numpy_state(net: torch.nn.Module) -> dict[str, np.ndarray]:
    return {name: value.detach().cpu().numpy().copy() for name, value in net.state_dict().items()}


class _Adam:
    """Adam (with L2 weight decay, as torch.optim.Adam's `weight_decay`), written out.

    torch.optim's constructor imports torch._dynamo, which costs seconds per process: more than a
    small tabular MLP spends training in a CV fold.
    """

    def __init__(self, params: list[torch.Tensor], lr: float, weight_decay: float) -> None:
        import torch

        self.params, self.lr, self.weight_decay = params, lr, weight_decay
        self.beta1, self.beta2, self.eps, self.steps = 0.9, 0.999, 1e-8, 0
        self.first = [torch.zeros_like(p) for p in params]
        self.second = [torch.zeros_like(p) for p in params]

    def zero_grad(self) -> None:
        for param in self.params:
            param.grad = None

    def step(self) -> None:
        import torch

        self.steps += 1
        first_fix = 1 - self.beta1**self.steps
        second_fix = 1 - self.beta2**self.steps
        with torch.no_grad():
            for param, first, second in zip(self.params, self.first, self.second, strict=True):
                grad = param.grad if not self.weight_decay else param.grad + self.weight_decay * param
                first.mul_(self.beta1).add_(grad, alpha=1 - self.beta1)
                second.mul_(self.beta2).addcmul_(grad, grad, value=1 - self.beta2)
                denominator = (second / second_fix).sqrt_().add_(self.eps)
                param.addcdiv_(first, denominator, value=-self.lr / first_fix)


class _threads:  # noqa: N801 - used as a context manager, reads like a function
    """Bound torch's intra-op threads to n_jobs while fitting or predicting, then restore them."""

    def __init__(self, n_jobs: int) -> None:
        self.n_jobs = max(1, int(n_jobs))

    def __enter__(self) -> None:
        import torch

        self.previous = torch.get_num_threads()
        torch.set_num_threads(self.n_jobs)

    def __exit__(self, *exc: object) -> None:
        import torch

        torch.set_num_threads(self.previous)
