"""The lesson's MNIST network in plain PyTorch, as the lesson writes it (torchvision's DataLoader with
ToTensor + Normalize, batch 64, Adam 1e-3, 5 epochs, then the test images): the yardstick for the whole
``neuronlab-train experiment=mnist`` run (see ``scripts/benchmark.py --graphs``). On the GPU if there is one.

    python scripts/lesson_mnist.py --root data                           # <root>/MNIST/raw/*-ubyte
    python scripts/lesson_mnist.py --root data --dataset FashionMNIST    # <root>/FashionMNIST/raw/*-ubyte
"""

import argparse

import torch
from torch import nn
from torch.utils.data import DataLoader
from torchvision import datasets, transforms

NORMALIZE = {"MNIST": (0.1307, 0.3081), "FashionMNIST": (0.2860, 0.3530)}
parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("--root", default="data")
parser.add_argument("--dataset", choices=sorted(NORMALIZE), default="MNIST")
parser.add_argument("--epochs", type=int, default=5)
args = parser.parse_args()

torch.manual_seed(0)
device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
mean, std = NORMALIZE[args.dataset]
transform = transforms.Compose([transforms.ToTensor(), transforms.Normalize((mean,), (std,))])
dataset = getattr(datasets, args.dataset)
train_loader = DataLoader(dataset(args.root, train=True, transform=transform), batch_size=64, shuffle=True)
test_loader = DataLoader(dataset(args.root, train=False, transform=transform), batch_size=1000)

model = nn.Sequential(
    nn.Flatten(),
    nn.Linear(784, 256),
    nn.ReLU(),
    nn.Dropout(0.2),
    nn.Linear(256, 128),
    nn.ReLU(),
    nn.Dropout(0.2),
    nn.Linear(128, 10),
).to(device)
criterion = nn.CrossEntropyLoss()
optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
for epoch in range(args.epochs):
    model.train()
    for images, labels in train_loader:
        images, labels = images.to(device), labels.to(device)
        optimizer.zero_grad()
        loss = criterion(model(images), labels)
        loss.backward()
        optimizer.step()
    print(f"epoch {epoch + 1}: loss {loss.item():.4f}")
model.eval()
correct = 0
with torch.no_grad():
    for images, labels in test_loader:
        correct += (model(images.to(device)).argmax(1) == labels.to(device)).sum().item()
print("accuracy:", correct / len(test_loader.dataset))
