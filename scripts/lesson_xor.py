"""The lesson's XOR network in plain PyTorch, as the lesson writes it: the yardstick for the start-up and
whole-process time of ``neuronlab-train`` (its default run is this same network; see scripts/benchmark.py).

    python scripts/lesson_xor.py
"""

import torch
from torch import nn

torch.manual_seed(0)
X = torch.tensor([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
y = torch.tensor([[0.0], [1.0], [1.0], [0.0]])


class SimpleNN(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.hidden = nn.Linear(2, 4)
        self.output = nn.Linear(4, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.output(torch.relu(self.hidden(x))))


model = SimpleNN()
criterion = nn.BCELoss()
optimizer = torch.optim.Adam(model.parameters(), lr=0.1)
for epoch in range(1000):
    optimizer.zero_grad()
    loss = criterion(model(X), y)
    loss.backward()
    optimizer.step()
    if (epoch + 1) % 100 == 0:
        print(f"epoch {epoch + 1}: loss {loss.item():.4f}")
with torch.no_grad():
    predictions = model(X)
print("predictions:", [round(p, 3) for p in predictions.squeeze(1).tolist()])
print("accuracy:", ((predictions > 0.5).float() == y).float().mean().item())
