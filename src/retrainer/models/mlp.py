"""PyTorch multilayer perceptrons behind the scikit-learn classifier and regressor APIs.

They sit in the same `Pipeline` as every other candidate (preprocessing, then the estimator), so
they are tuned, saved (skops/pickle), registered and served the same way. The learned weights live
in `state_` as plain numpy arrays, never as torch objects, so a saved model loads without pickle
hooks and predicting needs torch only when called. Training holds out a validation fold (stratified
for a classifier) and stops when its loss has not improved for `patience` epochs, keeping the best
epoch's weights.

A binary classifier has one output (a logit, BCE loss), k >= 3 classes have k (cross-entropy,
softmax), a regressor one output fitted to the standardised target (mean squared error).

The import paths `retrainer.models.mlp.TorchMLPClassifier` and `retrainer.models.mlp.TorchMLPRegressor`
are baked into every saved model: keep them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin

if TYPE_CHECKING:
    import torch


class _TorchMLP(BaseEstimator):
    """`n_layers` ReLU layers of `hidden_size` units with dropout, trained with Adam: the shared part.

    A subclass says how many outputs its network has, which loss it trains with, and what its
    validation fold is stratified by; fitting and the forward pass are the same for every task.
    """

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
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.device = device

    def _n_outputs(self) -> int:
        return 1

    def _loss(self, fit_targets: np.ndarray, device: str) -> torch.nn.Module:
        """The training and validation loss: `(outputs, targets) -> mean`; weights may read `fit_targets`."""
        raise NotImplementedError

    def _train(self, features: np.ndarray, targets: np.ndarray, stratify: np.ndarray | None) -> None:
        """Fit the network to `targets` (float32 for one output, class indices for several).

        Sets `state_` (the best validation epoch's weights), `best_epoch_`, `n_epochs_` and `val_losses_`.
        """
        import torch
        from sklearn.model_selection import train_test_split

        self.n_features_in_ = features.shape[1]
        fit_x, val_x, fit_y, val_y = train_test_split(
            features, targets, test_size=self.validation_fraction, stratify=stratify, random_state=self.random_state
        )
        device = self._device()
        with _threads(self.n_jobs):
            torch.manual_seed(self.random_state)
            net = self._network().to(device)
            loss_fn = self._loss(fit_y, device)
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
                    loss_fn(self._forward(net, fit_xt[index]), fit_yt[index]).backward()
                    optimizer.step()
                net.eval()
                with torch.no_grad():
                    val_loss = float(loss_fn(self._forward(net, val_xt), val_yt))
                self.val_losses_.append(round(val_loss, 6))
                if val_loss < best_loss - 1e-5:
                    best_loss, best_epoch, best_state = val_loss, epoch, _numpy_state(net)
                elif epoch - best_epoch >= self.patience:
                    break
        self.state_ = best_state
        self.best_epoch_ = best_epoch + 1
        self.n_epochs_ = len(self.val_losses_)

    def _outputs(self, X: Any) -> torch.Tensor:  # noqa: N803
        """The fitted network's raw outputs on CPU: logits, or the standardised target."""
        import torch

        if not hasattr(self, "state_"):
            from sklearn.exceptions import NotFittedError

            raise NotFittedError(f"{type(self).__name__} is not fitted yet: call fit first")
        features = _dense(X)
        with _threads(self.n_jobs), torch.no_grad():
            net = self._network()
            net.load_state_dict({name: torch.from_numpy(value) for name, value in self.state_.items()})
            net.eval()
            return self._forward(net, torch.from_numpy(features))

    def _network(self) -> torch.nn.Sequential:
        return _network(self.n_features_in_, self.hidden_size, self.n_layers, self.dropout, self._n_outputs())

    def _forward(self, net: torch.nn.Module, features: torch.Tensor) -> torch.Tensor:
        """One row per sample: a single output is squeezed to a vector, as BCE and MSE expect."""
        outputs: torch.Tensor = net(features)
        return outputs.squeeze(1) if self._n_outputs() == 1 else outputs

    def _device(self) -> str:
        import torch

        if self.device == "auto":
            return "cuda" if torch.cuda.is_available() else "cpu"
        return self.device


class TorchMLPClassifier(ClassifierMixin, _TorchMLP):
    """Binary or multiclass classifier; `class_weight='balanced'` weighs each class up by its rarity.

    Two classes keep one logit and BCE (with `pos_weight` when balanced), as saved binary models
    expect; k >= 3 classes get k logits, cross-entropy and a softmax in `classes_` order.
    """

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
        super().__init__(
            hidden_size=hidden_size,
            n_layers=n_layers,
            dropout=dropout,
            learning_rate=learning_rate,
            weight_decay=weight_decay,
            batch_size=batch_size,
            max_epochs=max_epochs,
            patience=patience,
            validation_fraction=validation_fraction,
            random_state=random_state,
            n_jobs=n_jobs,
            device=device,
        )
        self.class_weight = class_weight

    def fit(self, X: Any, y: Any) -> TorchMLPClassifier:  # noqa: N803
        self.classes_, labels = np.unique(np.asarray(y), return_inverse=True)
        if len(self.classes_) < 2:
            raise ValueError(f"TorchMLPClassifier needs at least 2 classes, got {len(self.classes_)}")
        if self.class_weight not in (None, "balanced"):
            raise ValueError(f"class_weight must be None or 'balanced', got {self.class_weight!r}")
        # BCE reads 0./1. floats, cross-entropy reads class indices
        targets = labels.astype(np.float32 if self._n_outputs() == 1 else np.int64)
        self._train(_dense(X), targets, stratify=labels)
        return self

    def predict_proba(self, X: Any) -> np.ndarray:  # noqa: N803
        import torch

        outputs = self._outputs(X)
        if self._n_outputs() == 1:
            positive = torch.sigmoid(outputs).numpy().astype(np.float64)
            return np.column_stack([1.0 - positive, positive])
        # softmax in float64: float32 rows miss 1 by ~1e-7, which scikit-learn's log_loss warns about
        return torch.softmax(outputs.double(), dim=1).numpy()

    def predict(self, X: Any) -> np.ndarray:  # noqa: N803
        proba = self.predict_proba(X)
        if self._n_outputs() == 1:
            return self.classes_[(proba[:, 1] >= 0.5).astype(int)]
        return self.classes_[proba.argmax(axis=1)]

    def _n_outputs(self) -> int:
        return 1 if len(self.classes_) == 2 else len(self.classes_)

    def _loss(self, fit_targets: np.ndarray, device: str) -> torch.nn.Module:
        import torch

        balanced = self.class_weight == "balanced"
        if self._n_outputs() == 1:
            positives = float(fit_targets.sum())
            pos_weight = (len(fit_targets) - positives) / max(positives, 1.0) if balanced else 1.0
            return torch.nn.BCEWithLogitsLoss(pos_weight=torch.tensor(pos_weight, device=device))
        if not balanced:
            return torch.nn.CrossEntropyLoss()
        # scikit-learn's 'balanced': n / (k * count); the loss is then a mean weighted by these
        counts = np.bincount(fit_targets, minlength=len(self.classes_))
        weights = len(fit_targets) / (len(self.classes_) * np.maximum(counts, 1))
        return torch.nn.CrossEntropyLoss(weight=torch.tensor(weights, dtype=torch.float32, device=device))


class TorchMLPRegressor(RegressorMixin, _TorchMLP):
    """Regressor: one output fitted by mean squared error to the target standardised internally.

    Standardising lets the same learning rates and early-stopping tolerance serve a price in the
    thousands and a rate near zero; `predict` undoes it with the stored `target_mean_`/`target_std_`.
    """

    def fit(self, X: Any, y: Any) -> TorchMLPRegressor:  # noqa: N803
        from sklearn.utils.validation import column_or_1d

        target = column_or_1d(y, warn=True).astype(np.float64)
        self.target_mean_ = float(target.mean())
        self.target_std_ = float(target.std()) or 1.0  # a constant target has nothing to scale
        standardised = ((target - self.target_mean_) / self.target_std_).astype(np.float32)
        self._train(_dense(X), standardised, stratify=None)
        return self

    def predict(self, X: Any) -> np.ndarray:  # noqa: N803
        standardised = self._outputs(X).numpy().astype(np.float64)
        return standardised * self.target_std_ + self.target_mean_

    def _loss(self, fit_targets: np.ndarray, device: str) -> torch.nn.Module:
        import torch

        return torch.nn.MSELoss()


def _dense(X: Any) -> np.ndarray:  # noqa: N803
    """float32 rows: the preprocessing may hand over a DataFrame or a sparse matrix."""
    if hasattr(X, "toarray"):
        X = X.toarray()  # noqa: N806
    return np.ascontiguousarray(np.asarray(X, dtype=np.float32))


def _network(n_features: int, hidden_size: int, n_layers: int, dropout: float, n_outputs: int) -> torch.nn.Sequential:
    import torch

    layers: list[torch.nn.Module] = []
    width = n_features
    for _ in range(n_layers):
        layers += [torch.nn.Linear(width, hidden_size), torch.nn.ReLU(), torch.nn.Dropout(dropout)]
        width = hidden_size
    layers.append(torch.nn.Linear(width, n_outputs))
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
