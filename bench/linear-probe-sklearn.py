# scikit-learn's LogisticRegression on the features bench/linear-probe.ts exported (Debian: python3-sklearn):
#   python3 bench/linear-probe-sklearn.py DIR C
import sys, time
import numpy as np
from sklearn.linear_model import LogisticRegression

d, C = sys.argv[1], float(sys.argv[2])
x_train, x_test = np.load(f'{d}/x_train.npy'), np.load(f'{d}/x_test.npy')
y_train, y_test = np.load(f'{d}/y_train.npy').ravel().astype(int), np.load(f'{d}/y_test.npy').ravel().astype(int)
t = time.time()
clf = LogisticRegression(C=C, multi_class='multinomial', solver='lbfgs', max_iter=1000).fit(x_train, y_train)
print({'C': C, 'seconds': round(time.time() - t, 2), 'iterations': int(clf.n_iter_[0]), 'test': float((clf.predict(x_test) == y_test).mean())})
